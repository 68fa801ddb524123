/**
 * `npm run bench:firestore` (tsx bench/firestore.ts): Firestore SDK get and set loops,
 * direct to the emulator, through a plain HTTP/2 relay, and through meshgate (mTLS with an
 * SVID, policy, audit to the real JSONL file), in one run on the same machine, with 1 and 16
 * concurrent callers. One JSON line per scenario on stdout:
 *
 *   {scenario, op, callers, seconds, emulator, direct_ops_s, meshgate_ops_s, ratio_vs_direct,
 *    p50_ms, p99_ms (meshgate), direct_p50_ms, direct_p99_ms, relay_ops_s, relay_ratio_vs_direct,
 *    ratio_vs_relay, relay_p50_ms, relay_p99_ms, errors, cpu_us_per_op, other_cores_busy, …}
 *
 * Which emulator answered goes to stderr first. Separate processes, so that no two share an
 * event loop:
 *   - meshgate, as deployed: `node bin/meshgate.js serve` on the compiled dist/ (bench/serve.ts;
 *     MESHGATE_BENCH_SOURCE=1 runs the sources through tsx instead);
 *   - the relay (this file with --relay): mTLS HTTP/2 in, h2c out, bytes piped, nothing else:
 *     the floor any Node gRPC proxy starts from, as bench/mysql.ts has its TCP relay;
 *   - the load (this file with --worker): one Firestore SDK client with N callers in a closed
 *     loop (each sends its next call when the last one answered). Every target is measured
 *     by the same kind of worker process, so the ratios compare like with like;
 *   - the emulator (Google's official one when installed, else the in-process fallback).
 * CPU microseconds per operation of the load, the proxy and the emulator are reported beside
 * the rates: on a small machine they compete for the same cores, and this says who used
 * them. `other_cores_busy` is what every other process on the machine used meanwhile: above
 * ~0.2 cores the machine was shared and the ratios are noise.
 *
 * Options (env):
 *   MESHGATE_BENCH_SECONDS   measured seconds per scenario and target (default 5)
 *   MESHGATE_BENCH_WARMUP    warm-up seconds before each measurement (default 1)
 *   MESHGATE_BENCH_CALLERS   caller counts (default 1,16)
 *   MESHGATE_BENCH_OPS       operations (default get,set)
 *   MESHGATE_BENCH_WORKERS   load processes per measurement, callers split between them (default 1)
 *   MESHGATE_BENCH_ROUNDS    the targets alternate this many times (A B C, C B A, …), each
 *                            measuring SECONDS / ROUNDS; the line reports the totals (default 2)
 *   MESHGATE_BENCH_PROFILE   a directory: V8 CPU profile of the meshgate process (--cpu-prof)
 *   MESHGATE_BENCH_NODE_FLAGS  extra node flags for the meshgate process (e.g. --prof)
 *   MESHGATE_BENCH_CLIENT_PROFILE  a directory: V8 CPU profiles of the load processes
 *   MESHGATE_BENCH_AUDIT_DURABILITY  strict or buffered (default: the config's default)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import { emulatorClientSettings, meshgateClientSettings } from '../src/demo/firestore-sdk.ts';
import { startFirestoreEmulator, type RunningEmulator } from '../src/dev/firestore-emulator.ts';
import { freePort } from '../src/dev/ports.ts';
import { cpuMicros } from './cpu.ts';
import { startServe } from './serve.ts';
import { percentile } from './load.ts';
import { benchCertificates, TRUST_DOMAIN, writeBenchPolicy } from './setup.ts';

const PROJECT = 'bench-firestore';
const COLLECTION = 'bench';
const READ_DOCS = 100;
/** About 100 bytes of fields, as in ../shared/FIRESTORE-EMULATORS.md's baseline. */
const DOC = { name: 'item-00042', qty: 42, price: 19.99, tags: ['red', 'large'], note: 'a bench document of about one hundred bytes' };

type Op = 'get' | 'set';
type Target = 'direct' | 'relay' | 'meshgate';

interface WorkerConfig {
  readonly target: Target;
  readonly port: number;
  /** PEM file paths for mTLS (relay, meshgate); null: plaintext to the emulator. */
  readonly tls: { readonly ca: string; readonly key: string; readonly cert: string } | null;
  readonly op: Op;
  readonly callers: number;
  /** Distinguishes the documents of concurrent workers' set loops. */
  readonly index: number;
}

interface WorkerResult {
  readonly ops: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly seconds: number;
  /** Latencies in microseconds (sorted). */
  readonly latenciesUs: number[];
}

if (process.argv[2] === '--worker') await worker(JSON.parse(process.argv[3]!) as WorkerConfig);
else if (process.argv[2] === '--relay') await relay(JSON.parse(process.argv[3]!) as RelayConfig);
else await main();

// ───────────────────────────── the floor: a plain HTTP/2 relay (child) ─────────────────────────────

interface RelayConfig {
  readonly upstreamPort: number;
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/**
 * What any Node gRPC proxy pays before it does anything: mTLS HTTP/2 in, one h2c stream per
 * call out, bytes and trailers piped both ways. No identity, policy, decoding or audit.
 */
async function relay(config: RelayConfig): Promise<void> {
  const { connect, constants, createSecureServer } = await import('node:http2');
  const upstream = connect(`http://127.0.0.1:${config.upstreamPort}`);
  upstream.on('error', () => {});
  const [cert, key, ca] = await Promise.all([readFile(config.cert), readFile(config.key), readFile(config.ca)]);
  const server = createSecureServer({ cert, key, ca, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'], settings: { maxConcurrentStreams: 256 } });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(headers)) if (!name.startsWith(':') && value !== undefined && name !== 'authorization') out[name] = value;
    const req = upstream.request({ ...out, ':method': 'POST', ':path': headers[':path']!, authorization: 'Bearer owner' });
    req.on('error', () => stream.close(constants.NGHTTP2_INTERNAL_ERROR));
    const trailers: Record<string, string | string[]> = {};
    req.on('response', (response, flags) => {
      const head: Record<string, string | string[] | number> = {};
      for (const [name, value] of Object.entries(response)) if (value !== undefined && (name === ':status' || !name.startsWith(':'))) head[name] = value;
      if (flags & constants.NGHTTP2_FLAG_END_STREAM) stream.respond(head, { endStream: true });
      else {
        stream.respond(head, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers('grpc-status' in trailers ? trailers : { 'grpc-status': '2' }));
        req.pipe(stream);
      }
    });
    req.on('trailers', (t) => {
      for (const [name, value] of Object.entries(t)) if (value !== undefined && !name.startsWith(':')) trailers[name] = value as string | string[];
    });
    stream.pipe(req);
    stream.on('close', () => {
      if (!req.closed) req.close(constants.NGHTTP2_CANCEL);
    });
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`ready ${(server.address() as AddressInfo).port}\n`));
}

// ───────────────────────────── the load generator (child) ─────────────────────────────

async function worker(config: WorkerConfig): Promise<void> {
  // tsx turns source maps on; the SDK captures a stack trace per call, and mapping it would
  // make the load generator, not the path under test, the first thing to run out of CPU.
  process.setSourceMapsEnabled(false);
  const { Firestore } = await import('@google-cloud/firestore');
  let db: InstanceType<typeof Firestore>;
  if (config.tls === null) {
    db = new Firestore({ projectId: PROJECT, ...emulatorClientSettings({ host: '127.0.0.1', port: config.port }) } as never);
  } else {
    // The grpc-js google-gax bundles: its credentials pass the SDK's instanceof checks.
    const gax = createRequire(import.meta.url)('google-gax') as { grpc: typeof import('@grpc/grpc-js') };
    const [ca, key, cert] = await Promise.all([readFile(config.tls.ca), readFile(config.tls.key), readFile(config.tls.cert)]);
    db = new Firestore({ projectId: PROJECT, ...meshgateClientSettings(gax.grpc, { host: '127.0.0.1', port: config.port }, { ca, key, cert }) } as never);
  }
  const collection = db.collection(COLLECTION);
  const once_ = async (caller: number, i: number) => {
    if (config.op === 'get') await collection.doc(`g${(caller * 7 + i) % READ_DOCS}`).get();
    else await collection.doc(`w${config.index}-${caller}-${i % 20}`).set(DOC);
  };
  await once_(0, 0); // the channel is open and the first call answered
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  const [command] = (await once(lines, 'line')) as [string];
  const [, warmupMs, measureMs] = command.split(' ').map(Number) as [string, number, number];

  let errors = 0;
  let firstError: string | null = null;
  const run = async (durationMs: number, latencies: number[] | null) => {
    const end = performance.now() + durationMs;
    await Promise.all(
      Array.from({ length: config.callers }, async (_, caller) => {
        let i = 0;
        while (performance.now() < end) {
          const started = performance.now();
          try {
            await once_(caller, i++);
            latencies?.push(Math.round((performance.now() - started) * 1000));
          } catch (error) {
            errors++;
            firstError ??= String((error as Error).message ?? error).slice(0, 300);
          }
        }
      }),
    );
  };
  await run(warmupMs, null);
  const latencies: number[] = [];
  const started = performance.now();
  await run(measureMs, latencies);
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const result: WorkerResult = { ops: latencies.length, errors, firstError, seconds, latenciesUs: latencies };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await db.terminate();
  process.exit(0);
}

// ───────────────────────────── the orchestrator ─────────────────────────────

async function main(): Promise<void> {
  const SECONDS = Number(process.env.MESHGATE_BENCH_SECONDS ?? 5);
  const WARMUP = Number(process.env.MESHGATE_BENCH_WARMUP ?? 1);
  const CALLERS = (process.env.MESHGATE_BENCH_CALLERS ?? '1,16').split(',').map(Number);
  const OPS = (process.env.MESHGATE_BENCH_OPS ?? 'get,set').split(',') as Op[];
  const WORKERS = Number(process.env.MESHGATE_BENCH_WORKERS ?? 1);
  const ROUNDS = Number(process.env.MESHGATE_BENCH_ROUNDS ?? 2);

  const dir = await mkdtemp(join(tmpdir(), 'meshgate-bench-fs-'));
  const children: ChildProcess[] = [];
  let emulator: RunningEmulator | null = null;
  try {
    emulator = await startFirestoreEmulator();
    process.stderr.write(`# emulator: ${emulator.description}\n`);
    const emulatorPid = findEmulatorPid(emulator.port);

    const { server, client } = await benchCertificates(dir);
    await writeBenchPolicy(dir, 'bench-firestore', { id: 'loadgen', from: [{ source: { namespaces: ['bench'] } }], to: [{ firestore: { collections: [`${COLLECTION}/*`], operations: ['read', 'write'] } }] });
    // meshgate logs in with every configured account at start; root (empty password, as the
    // machine provides it) is one that does, and no policy rule maps anyone to its role.
    await writeFile(join(dir, 'unused.pw'), '', { mode: 0o600 });
    const firestorePort = await freePort();
    const auditFile = join(dir, 'audit.jsonl');
    await writeFile(
      join(dir, 'meshgate.yaml'),
      stringify({
        listener: { port: 0, tls: { cert: server.certPath, key: server.keyPath } },
        trust: { bundles: [client.bundlePath], trustDomains: [TRUST_DOMAIN] },
        // The MySQL side is required by the config and unused here: one static account nobody asks for.
        upstream: { roles: { unused: { user: 'root', password: { file: 'unused.pw' } } } },
        firestore: { host: '127.0.0.1', port: firestorePort, project: PROJECT, upstream: { emulator: `${emulator.host}:${emulator.port}` } },
        policy: { dir: 'policy' },
        audit: { file: auditFile, ...(process.env.MESHGATE_BENCH_AUDIT_DURABILITY === undefined ? {} : { durability: process.env.MESHGATE_BENCH_AUDIT_DURABILITY }) },
      }),
    );
    const nodeFlags = (process.env.MESHGATE_BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
    const profile = process.env.MESHGATE_BENCH_PROFILE;
    if (profile) nodeFlags.push('--cpu-prof', `--cpu-prof-dir=${profile}`);
    const meshgate = await startMeshgateChild(join(dir, 'meshgate.yaml'), nodeFlags);
    children.push(meshgate);
    const relayConfig: RelayConfig = { upstreamPort: emulator.port, cert: server.certPath, key: server.keyPath, ca: client.bundlePath };
    const relayChild = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, '--relay', JSON.stringify(relayConfig)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(relayChild);
    const [relayReady] = (await once(createInterface({ input: relayChild.stdout! }), 'line')) as [string];
    const relayPort = Number(/^ready (\d+)$/.exec(relayReady)?.[1]);
    process.stderr.write(`# meshgate (pid ${meshgate.pid}) serving Firestore on 127.0.0.1:${firestorePort}, audit ${auditFile}; load from ${WORKERS} worker process(es)\n`);

    // Seed the documents the get loops read, directly.
    const { Firestore } = await import('@google-cloud/firestore');
    const seeder = new Firestore({ projectId: PROJECT, ...emulatorClientSettings(emulator) } as never);
    const batch = seeder.batch();
    for (let i = 0; i < READ_DOCS; i++) batch.set(seeder.collection(COLLECTION).doc(`g${i}`), { ...DOC, qty: i });
    await batch.commit();
    await seeder.terminate();

    const targets: Record<Target, Omit<WorkerConfig, 'op' | 'callers' | 'index'>> = {
      direct: { target: 'direct', port: emulator.port, tls: null },
      relay: { target: 'relay', port: relayPort, tls: { ca: client.bundlePath, key: client.keyPath, cert: client.certPath } },
      meshgate: { target: 'meshgate', port: firestorePort, tls: { ca: client.bundlePath, key: client.keyPath, cert: client.certPath } },
    };
    const measure = (target: Target, op: Op, callers: number, seconds: number, warmup: number) =>
      runLoad({ ...targets[target] }, op, callers, WORKERS, seconds, warmup, (workers) => ({
        // The proxy in the path (none for direct: meshgate's idle CPU stands in, as a check).
        proxy: target === 'relay' ? relayChild.pid! : meshgate.pid!,
        ...(emulatorPid === null ? {} : { emulator: emulatorPid }),
        workers,
      }));

    // The JVM compiles as it goes: give both paths a first run that is not counted.
    for (const target of ['direct', 'relay', 'meshgate'] as const) await measure(target, 'get', Math.max(...CALLERS), 2, 1);

    for (const op of OPS) {
      for (const callers of CALLERS) {
        // ABC CBA…: the targets alternate, so load that drifts over the run weighs on each.
        const runs: Record<Target, LoadResult[]> = { direct: [], relay: [], meshgate: [] };
        for (let round = 0; round < ROUNDS; round++) {
          const order: Target[] = round % 2 === 0 ? ['direct', 'relay', 'meshgate'] : ['meshgate', 'relay', 'direct'];
          for (const target of order) runs[target].push(await measure(target, op, callers, SECONDS / ROUNDS, WARMUP));
        }
        const d = combine(runs.direct);
        const r = combine(runs.relay);
        const m = combine(runs.meshgate);
        console.log(
          JSON.stringify({
            scenario: `firestore_${op}`,
            op,
            callers,
            seconds: SECONDS,
            emulator: emulator.kind,
            direct_ops_s: Math.round(d.opsPerSecond),
            meshgate_ops_s: Math.round(m.opsPerSecond),
            ratio_vs_direct: round3(m.opsPerSecond / d.opsPerSecond),
            p50_ms: m.p50Ms,
            p99_ms: m.p99Ms,
            direct_p50_ms: d.p50Ms,
            direct_p99_ms: d.p99Ms,
            relay_ops_s: Math.round(r.opsPerSecond),
            relay_ratio_vs_direct: round3(r.opsPerSecond / d.opsPerSecond),
            ratio_vs_relay: round3(m.opsPerSecond / r.opsPerSecond),
            relay_p50_ms: r.p50Ms,
            relay_p99_ms: r.p99Ms,
            errors: { direct: d.errors, relay: r.errors, meshgate: m.errors },
            cpu_us_per_op: { direct: withoutOthers(d.cpuUsPerOp), relay: withoutOthers(r.cpuUsPerOp), meshgate: withoutOthers(m.cpuUsPerOp) },
            // Cores other processes kept busy meanwhile: above ~0.2 the machine was shared and the ratios are noisy.
            other_cores_busy: { direct: otherCores(d), relay: otherCores(r), meshgate: otherCores(m) },
            rounds: ROUNDS,
            client_processes: WORKERS,
          }),
        );
        for (const [name, result] of [['direct', d], ['relay', r], ['meshgate', m]] as const) {
          if (result.firstError !== null) process.stderr.write(`# ${name} ${op} x${callers}: ${result.errors} errors, first: ${result.firstError}\n`);
        }
      }
    }
    const audited = (await readFile(auditFile, 'utf8')).split('\n').filter((line) => line.includes('"type":"rpc"')).length;
    process.stderr.write(`# meshgate wrote ${audited} rpc audit events\n`);
  } finally {
    for (const child of children) {
      child.kill('SIGTERM');
      if (child.exitCode === null) await Promise.race([once(child, 'exit'), new Promise((r) => setTimeout(r, 5000))]);
    }
    await emulator?.stop();
    await rm(dir, { recursive: true, force: true });
    if (process.env.MESHGATE_BENCH_PROFILE) {
      const files = (await readdir(process.env.MESHGATE_BENCH_PROFILE)).filter((f) => f.endsWith('.cpuprofile'));
      process.stderr.write(`# meshgate CPU profile(s) in ${process.env.MESHGATE_BENCH_PROFILE}: ${files.join(', ')}\n`);
    }
  }
}

interface LoadResult {
  readonly ops: number;
  readonly seconds: number;
  /** Sorted, microseconds. */
  readonly latenciesUs: number[];
  /** CPU µs each process used while CPU was sampled, and the operations in that time. */
  readonly cpuUs: Record<string, number>;
  readonly cpuOps: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly firstError: string | null;
  /** CPU µs per operation: the load process(es), the proxy (relay or meshgate), the emulator. */
  readonly cpuUsPerOp: Record<string, number>;
}

/** `callers` split over `processes` workers, started together, measured over the same window. */
async function runLoad(
  base: Omit<WorkerConfig, 'op' | 'callers' | 'index'>,
  op: Op,
  callers: number,
  processes: number,
  seconds: number,
  warmup: number,
  watch: (workers: number[]) => { proxy: number; emulator?: number; workers: number[] },
): Promise<LoadResult> {
  const count = Math.min(processes, callers);
  const workers = await Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const share = Math.floor(callers / count) + (index < callers % count ? 1 : 0);
      const config: WorkerConfig = { ...base, op, callers: share, index };
      const clientProfile = process.env.MESHGATE_BENCH_CLIENT_PROFILE;
      // One directory per measurement; in it, thread 0 of each process is its main thread.
      const flags = clientProfile ? ['--cpu-prof', `--cpu-prof-dir=${join(clientProfile, `${base.target}-${op}-${callers}`)}`] : [];
      const child = spawn(process.execPath, [...flags, '--import', 'tsx', import.meta.filename, '--worker', JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'inherit'] });
      const lines = createInterface({ input: child.stdout! });
      const result = new Promise<WorkerResult>((resolve, reject) => {
        lines.on('line', (line) => {
          if (line.startsWith('{')) resolve(JSON.parse(line) as WorkerResult);
        });
        child.once('exit', (code) => reject(new Error(`a ${base.target} worker exited (${code}) without a result`)));
      });
      result.catch(() => {});
      const [first] = (await Promise.race([once(lines, 'line'), result])) as [string];
      if (first !== 'ready') throw new Error(`worker said ${first}`);
      return { child, result };
    }),
  );
  const { proxy, emulator, workers: pids } = watch(workers.map((w) => w.child.pid!));
  for (const w of workers) w.child.stdin!.write(`go ${warmup * 1000} ${seconds * 1000}\n`);
  await new Promise((r) => setTimeout(r, warmup * 1000 + 50));
  const cpu = () => ({
    client: pids.reduce((sum, pid) => sum + cpuMicros(pid), 0),
    proxy: cpuMicros(proxy),
    ...(emulator === undefined ? {} : { emulator: cpuMicros(emulator) }),
    machine: machineBusyMicros(),
  });
  const before = cpu();
  // Sampled just before the workers stop, so the window is the measured one.
  await new Promise((r) => setTimeout(r, seconds * 1000 - 100));
  const afterCpu = cpu();
  const results = await Promise.all(workers.map((w) => w.result));
  const latencies = results.flatMap((r) => r.latenciesUs).sort((a, b) => a - b);
  const ops = results.reduce((sum, r) => sum + r.ops, 0);
  const window = Math.max(...results.map((r) => r.seconds));
  // CPU was sampled over (seconds - 0.1) s of the window: count the operations of that much.
  const cpuOps = (ops * (seconds - 0.1)) / window;
  const used = Object.fromEntries(Object.entries(afterCpu).map(([name, value]) => [name, value - before[name as keyof typeof before]!]));
  // What every other process on the machine used meanwhile (other tests, other benchmarks): noise.
  const { machine, ...cpuUs } = used;
  cpuUs['others'] = machine! - Object.values(cpuUs).reduce((sum, us) => sum + us, 0);
  return {
    ops,
    seconds: window,
    latenciesUs: latencies,
    cpuUs,
    cpuOps,
    opsPerSecond: ops / window,
    p50Ms: percentile(latencies, 0.5) / 1000,
    p99Ms: percentile(latencies, 0.99) / 1000,
    errors: results.reduce((sum, r) => sum + r.errors, 0),
    firstError: results.find((r) => r.firstError !== null)?.firstError ?? null,
    cpuUsPerOp: perOp(cpuUs, cpuOps),
  };
}

/** CPU time all processes used (user + nice + system + irq + softirq + steal), from /proc/stat. */
function machineBusyMicros(): number {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
    return ((user + nice + system + irq + softirq + steal) * 1_000_000) / 100;
  } catch {
    return Number.NaN;
  }
}

function perOp(cpuUs: Record<string, number>, ops: number): Record<string, number> {
  return Object.fromEntries(Object.entries(cpuUs).map(([name, us]) => [name, Math.round(us / ops)]));
}

/** Several measurements of one target as one: total operations over total time. */
function combine(results: readonly LoadResult[]): LoadResult {
  const ops = results.reduce((sum, r) => sum + r.ops, 0);
  const seconds = results.reduce((sum, r) => sum + r.seconds, 0);
  const latenciesUs = results.flatMap((r) => r.latenciesUs).sort((a, b) => a - b);
  const cpuUs: Record<string, number> = {};
  for (const r of results) for (const [name, us] of Object.entries(r.cpuUs)) cpuUs[name] = (cpuUs[name] ?? 0) + us;
  const cpuOps = results.reduce((sum, r) => sum + r.cpuOps, 0);
  return {
    ops,
    seconds,
    latenciesUs,
    cpuUs,
    cpuOps,
    opsPerSecond: ops / seconds,
    p50Ms: percentile(latenciesUs, 0.5) / 1000,
    p99Ms: percentile(latenciesUs, 0.99) / 1000,
    errors: results.reduce((sum, r) => sum + r.errors, 0),
    firstError: results.find((r) => r.firstError !== null)?.firstError ?? null,
    cpuUsPerOp: perOp(cpuUs, cpuOps),
  };
}

/** meshgate as deployed: `node bin/meshgate.js serve` on the compiled dist/ (bench/serve.ts). */
async function startMeshgateChild(configFile: string, nodeFlags: string[]): Promise<ChildProcess> {
  return (await startServe(configFile, nodeFlags)).child;
}

/** The official emulator's JVM, found by its command line; null for the in-process one. */
function findEmulatorPid(port: number): number | null {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args.some((a) => a.endsWith('CloudFirestore')) && args.includes(String(port))) return Number(entry);
    } catch {
      // gone, or not ours to read
    }
  }
  return null;
}


function withoutOthers(perOp: Record<string, number>): Record<string, number> {
  const { others: _, ...ours } = perOp;
  return ours;
}

function otherCores(result: LoadResult): number {
  return round3((result.cpuUs['others'] ?? 0) / ((result.cpuOps / result.ops) * result.seconds * 1_000_000));
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
