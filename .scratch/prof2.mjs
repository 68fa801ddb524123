import { readFileSync, readdirSync } from 'node:fs';
const f = readdirSync('/tmp/prof').sort()[0];
const p = JSON.parse(readFileSync('/tmp/prof/' + f));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children || []) parent.set(c, n.id);
const time = new Map();
p.samples.forEach((id, i) => time.set(id, (time.get(id) || 0) + (p.timeDeltas[i] || 0)));
const stacks = new Map();
for (const [id, t] of time) {
  const n = byId.get(id);
  if (!['writeBuffer', '_copyActual'].includes(n.callFrame.functionName)) continue;
  let chain = []; let cur = id;
  for (let k = 0; k < 8 && cur !== undefined; k++) { const m = byId.get(cur); chain.push(`${m.callFrame.functionName}@${m.callFrame.url.split('/').slice(-1)[0]}:${m.callFrame.lineNumber}`); cur = parent.get(cur); }
  const key = chain.join(' < ');
  stacks.set(key, (stacks.get(key) || 0) + t);
}
[...stacks.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8).forEach(([k, v]) => console.log((v / 1000).toFixed(1), k));
