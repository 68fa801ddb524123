// Preloaded into every test process by run-tests.mjs. When the runner has to end a file
// (its tests are done but it will not exit, or it ran out of time), this says what kept it
// alive before it goes, so the failure names a cause and not just a file.
import { writeSync } from 'node:fs';

process.prependListener('SIGTERM', () => {
  const counted = new Map();
  for (const kind of process.getActiveResourcesInfo()) {
    if (kind === 'TTYWrap' || kind === 'PipeWrap') continue; // the runner's own pipes
    counted.set(kind, (counted.get(kind) ?? 0) + 1);
  }
  const open = [...counted].map(([kind, n]) => (n > 1 ? `${kind}×${n}` : kind)).join(', ') || 'no handle Node can see (a child process or native handle?)';
  process.stderr.write(`\n[run-tests] still open when the runner ended this file: ${open}\n`);
  try {
    writeSync(3, JSON.stringify({ type: 'runner:open', open }) + '\n');
  } catch {}
  process.exit(1);
});
