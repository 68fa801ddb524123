/**
 * `npx tsx bench/profile-summary.ts FILE.cpuprofile [--queries N]`: where a V8 CPU profile's
 * time went, by what the code does (TLS and crypto, sockets, the MySQL codec, audit, policy,
 * tagging, GC, …) and by function; with --queries, as microseconds per query. Made for the
 * profiles `MESHGATE_BENCH_PROFILE=DIR npm run bench:mysql` writes of the meshgate process.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** First match wins: more specific categories come first. */
const CATEGORIES: readonly [string, (frame: ProfileNode['callFrame']) => boolean][] = [
  ['gc', (f) => f.functionName === '(garbage collector)'],
  ['idle', (f) => f.functionName === '(idle)'],
  // Native work with no JS frame above it: TLS records decrypted and sockets read in libuv's callbacks.
  ['native, outside JS', (f) => f.functionName === '(program)'],
  ['audit', (f) => /\/src\/audit/.test(f.url)],
  ['policy', (f) => /\/src\/policy/.test(f.url)],
  ['tagging & statement edits', (f) => /statement-edits|statement-text|\/sql\//.test(f.url)],
  ['mysql codec', (f) => /engines\/mysql\/codec/.test(f.url)],
  ['mysql session & relay', (f) => /engines\/mysql\//.test(f.url)],
  ['throttle', (f) => /\/src\/throttle/.test(f.url)],
  ['telemetry', (f) => /\/src\/telemetry/.test(f.url)],
  ['other meshgate', (f) => /\/src\//.test(f.url)],
  ['tls & crypto', (f) => /(_tls_|tls_wrap|crypto)/.test(f.url) || /^(TLSWrap|SSL|encrypt|decrypt)/i.test(f.functionName)],
  ['net & streams', (f) => /node:(net|stream|internal\/streams|internal\/stream_base)|(^|\/)(net|stream)\.js/.test(f.url) || /writev|writeBuffer|onStreamRead|writeGeneric/.test(f.functionName)],
  ['node internals', (f) => f.url.startsWith('node:')],
  ['native', (f) => f.url === ''],
  ['dependencies', (f) => /node_modules/.test(f.url)],
];

function categoryOf(frame: ProfileNode['callFrame']): string {
  return CATEGORIES.find(([, test]) => test(frame))?.[0] ?? 'other';
}

const args = process.argv.slice(2);
const file = args.find((arg) => !arg.startsWith('--'));
if (file === undefined) {
  process.stderr.write('usage: npx tsx bench/profile-summary.ts FILE.cpuprofile [--queries N]\n');
  process.exit(2);
}
const queriesAt = args.indexOf('--queries');
const queries = queriesAt >= 0 ? Number(args[queriesAt + 1]) : null;
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

const byCategory = new Map<string, number>();
const byFunction = new Map<string, number>();
let total = 0;
for (const [id, us] of selfUs) {
  const frame = byId.get(id)!.callFrame;
  const category = categoryOf(frame);
  if (category === 'idle') continue;
  total += us;
  byCategory.set(category, (byCategory.get(category) ?? 0) + us);
  const name = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${frame.lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + us);
}

const per = (us: number) => (queries === null ? `${(us / 1000).toFixed(1)} ms` : `${(us / queries).toFixed(2)} µs/query`);
const share = (us: number) => `${((100 * us) / total).toFixed(1)} %`;
console.log(`busy ${per(total)}${queries === null ? '' : ` over ${queries} queries`}`);
console.log('\nby category');
for (const [name, us] of [...byCategory].sort((a, b) => b[1] - a[1])) console.log(`  ${share(us).padStart(7)}  ${per(us).padStart(16)}  ${name}`);
console.log('\ntop functions (self time)');
for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${share(us).padStart(7)}  ${per(us).padStart(16)}  ${name}`);
