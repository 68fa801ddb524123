/**
 * `npm run bench:mysql`: point selects direct to MariaDB, through a plain Node TCP relay,
 * and through meshgate (mTLS + policy + audit), in one run on the same machine, at 1, 8
 * and 32 connections, text and prepared. One JSON line per scenario on stdout.
 *
 * Options (env): MESHGATE_BENCH_SECONDS (default 3 per measurement), MESHGATE_BENCH_CONNECTS (default 300),
 * MESHGATE_BENCH_AUDIT_DURABILITY (strict or buffered; default: the config's default),
 * MESHGATE_BENCH_TRACING=1 (a span for every statement and login, exported over OTLP/HTTP to a
 * sink in this process that reads and drops them), MESHGATE_BENCH_METRICS=1 (Prometheus metrics
 * on, on a plain listener this process scrapes every MESHGATE_BENCH_SCRAPE_MS, default 1000),
 * MESHGATE_BENCH_THROTTLE=1 (service classes with limits the load never reaches).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import { provision } from '../src/demo/provision.ts';
import { initCa, issueServerCert, issueSvid } from '../src/identity/ca.ts';
import { connectLatency, pointSelects, type Mode } from './load.ts';

const MARIADB = { host: '127.0.0.1', port: 3306, user: 'root', password: '' };
const SECONDS = Number(process.env.MESHGATE_BENCH_SECONDS ?? 3);
const CONNECTS = Number(process.env.MESHGATE_BENCH_CONNECTS ?? 300);
const ROWS = 10_000;
const TRUST_DOMAIN = 'bench.meshgate.local';

async function startChild(script: string, args: string[], nodeFlags: string[] = []): Promise<{ child: ChildProcess; port: number; metricsPort: number | null }> {
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', join(import.meta.dirname, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  let metricsPort: number | null = null;
  for await (const line of lines) {
    const metrics = /^metrics (\d+)$/.exec(line);
    if (metrics) metricsPort = Number(metrics[1]);
    const match = /^ready (\d+)$/.exec(line);
    if (match) return { child, port: Number(match[1]), metricsPort };
  }
  throw new Error(`${script} exited before it was ready`);
}

/** Where spans go with MESHGATE_BENCH_TRACING=1: read and dropped, counted to show they came. */
async function startSpanSink(): Promise<{ endpoint: string; exports: number; bytes: number; close(): void }> {
  const sink = { endpoint: '', exports: 0, bytes: 0, close: () => server.close() };
  const server = createServer((req, res) => {
    req.on('data', (chunk: Buffer) => (sink.bytes += chunk.length));
    req.on('end', () => {
      sink.exports++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  sink.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return sink;
}

const dir = await mkdtemp(join(tmpdir(), 'meshgate-bench-'));
const spanSink = process.env.MESHGATE_BENCH_TRACING === '1' ? await startSpanSink() : null;
const METRICS = process.env.MESHGATE_BENCH_METRICS === '1';
/**
 * MESHGATE_BENCH_THROTTLE=1: service classes configured with limits the load never reaches
 * (rate, concurrency, sessions, per-identity limits): what admitting every statement costs.
 */
const THROTTLE = process.env.MESHGATE_BENCH_THROTTLE === '1';
/** Scrapes as Prometheus would (more often than its usual 15 s, to be on the safe side). */
const scraper = { scrapes: 0, bytes: 0, last: '', timer: null as NodeJS.Timeout | null };
const children: ChildProcess[] = [];
// Unique per run: tests, the demo or another benchmark may share this MariaDB.
const RUN = randomBytes(3).toString('hex');
const DATABASE = `mgbench_${RUN}`;
const ROLE = `bench_${RUN}_reader`;
const provisioned = await provision(MARIADB, DATABASE, { [ROLE]: { privileges: ['SELECT'] } }, [
  'CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT NOT NULL)',
  `INSERT INTO {db}.items SELECT seq, CONCAT('item-', seq), seq % 100 FROM {db}.seq_1_to_${ROWS}`,
]);
try {
  const account = provisioned.accounts.get(ROLE)!;
  const caDir = join(dir, 'ca');
  await initCa({ dir: caDir, trustDomain: TRUST_DOMAIN });
  const server = await issueServerCert({ caDir, outDir: dir });
  const client = await issueSvid({ caDir, spiffeId: `spiffe://${TRUST_DOMAIN}/ns/bench/sa/loadgen`, outDir: dir, name: 'client', ttlSeconds: 7200 });
  await mkdir(join(dir, 'policy'));
  await writeFile(
    join(dir, 'policy', 'bench.yaml'),
    stringify({
      apiVersion: 'meshgate.dev/v1alpha1',
      kind: 'AccessPolicy',
      metadata: { name: 'bench' },
      spec: { action: 'ALLOW', rules: [{ from: [{ source: { namespaces: ['bench'] } }], to: [{ mariadb: { databases: [DATABASE], role: ROLE } }] }] },
    }),
  );
  await writeFile(join(dir, 'reader.pw'), account.password, { mode: 0o600 });
  await writeFile(
    join(dir, 'meshgate.yaml'),
    stringify({
      listener: { port: 0, tls: { cert: server.certPath, key: server.keyPath } },
      trust: { bundles: [client.bundlePath], trustDomains: [TRUST_DOMAIN] },
      upstream: { host: MARIADB.host, port: MARIADB.port, roles: { [ROLE]: { user: account.user, password: { file: 'reader.pw' } } } },
      policy: { dir: 'policy' },
      audit: {
        file: 'audit.jsonl',
        tagStatements: process.env.MESHGATE_BENCH_TAG !== '0',
        ...(process.env.MESHGATE_BENCH_AUDIT_DURABILITY === undefined ? {} : { durability: process.env.MESHGATE_BENCH_AUDIT_DURABILITY }),
      },
      ...(spanSink === null ? {} : { tracing: { otlp: { endpoint: spanSink.endpoint }, sampling: { ratio: 1 } } }),
      ...(METRICS ? { metrics: { listen: '127.0.0.1:0' } } : {}),
      ...(THROTTLE
        ? {
            throttle: {
              classes: {
                default: {
                  rate: { perSecond: 1_000_000 },
                  concurrency: 10_000,
                  sessions: 10_000,
                  perIdentity: { rate: { perSecond: 1_000_000 }, concurrency: 10_000, sessions: 10_000 },
                },
              },
            },
          }
        : {}),
    }),
  );
  const relay = await startChild('relay-child.ts', [MARIADB.host, String(MARIADB.port)]);
  // MESHGATE_BENCH_PROFILE=DIR writes a V8 CPU profile of the meshgate process there.
  const profile = process.env.MESHGATE_BENCH_PROFILE;
  const nodeFlags = (process.env.MESHGATE_BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
  if (profile) nodeFlags.push('--cpu-prof', `--cpu-prof-dir=${profile}`);
  const meshgate = await startChild('meshgate-child.ts', [join(dir, 'meshgate.yaml')], nodeFlags);
  children.push(relay.child, meshgate.child);
  if (meshgate.metricsPort !== null) {
    const url = `http://127.0.0.1:${meshgate.metricsPort}/metrics`;
    scraper.timer = setInterval(() => {
      void fetch(url)
        .then((response) => response.text())
        .then((text) => {
          scraper.scrapes++;
          scraper.bytes += text.length;
          scraper.last = text;
        });
    }, Number(process.env.MESHGATE_BENCH_SCRAPE_MS ?? 1000));
  }

  const base = { user: account.user, password: account.password, database: DATABASE, host: '127.0.0.1' };
  const direct = { ...base, port: MARIADB.port };
  const viaRelay = { ...base, port: relay.port };
  const ssl = { cert: await readFile(client.certPath), key: await readFile(client.keyPath), ca: await readFile(client.bundlePath) };
  const viaMeshgate = { ...base, port: meshgate.port, user: 'loadgen', password: '', ssl };

  const modes = (process.env.MESHGATE_BENCH_MODES ?? 'text,prepared').split(',') as Mode[];
  const connectionCounts = (process.env.MESHGATE_BENCH_CONNECTIONS ?? '1,8,32').split(',').map(Number);
  for (const mode of modes) {
    for (const connections of connectionCounts) {
      const watch = { client: process.pid, relay: relay.child.pid!, meshgate: meshgate.child.pid!, ...mariadbPid() };
      const d = await pointSelects(direct, connections, mode, SECONDS, ROWS, watch);
      const r = await pointSelects(viaRelay, connections, mode, SECONDS, ROWS, watch);
      const m = await pointSelects(viaMeshgate, connections, mode, SECONDS, ROWS, watch);
      console.log(
        JSON.stringify({
          scenario: `point_select_${mode}`,
          connections,
          direct_qps: Math.round(d.qps),
          relay_qps: Math.round(r.qps),
          meshgate_qps: Math.round(m.qps),
          ratio_vs_relay: round(m.qps / r.qps),
          ratio_vs_direct: round(m.qps / d.qps),
          p50_us: m.p50Us,
          p99_us: m.p99Us,
          direct_p50_us: d.p50Us,
          relay_p50_us: r.p50Us,
          cpu_us_per_query: { direct: d.cpuUsPerQuery, relay: r.cpuUsPerQuery, meshgate: m.cpuUsPerQuery },
        }),
      );
    }
  }
  const directConnect = await connectLatency(direct, CONNECTS);
  const meshgateConnect = await connectLatency(viaMeshgate, CONNECTS);
  console.log(
    JSON.stringify({
      scenario: 'connect_to_first_result',
      connections: 1,
      samples: CONNECTS,
      direct_p50_us: directConnect.p50Us,
      direct_p99_us: directConnect.p99Us,
      meshgate_mtls_p50_us: meshgateConnect.p50Us,
      meshgate_mtls_p99_us: meshgateConnect.p99Us,
    }),
  );
  if (spanSink !== null) console.log(JSON.stringify({ scenario: 'tracing_sink', exports: spanSink.exports, bytes: spanSink.bytes }));
  if (scraper.timer !== null) {
    // The statements the last scrape had counted: metrics saw the load, not just ran beside it.
    const counted = [...scraper.last.matchAll(/^meshgate_statement_duration_seconds_count\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    console.log(JSON.stringify({ scenario: 'metrics_scrapes', scrapes: scraper.scrapes, bytes: scraper.bytes, statements_counted: counted }));
  }
} finally {
  if (scraper.timer !== null) clearInterval(scraper.timer);
  spanSink?.close();
  for (const child of children) child.kill('SIGTERM');
  await provisioned.drop();
  await rm(dir, { recursive: true, force: true });
}

/** MariaDB's server process, when it runs on this machine, so its CPU share shows too. */
function mariadbPid(): Record<string, number> {
  try {
    const pid = Number(execFileSync('pidof', ['mariadbd'], { encoding: 'utf8' }).trim().split(' ')[0]);
    return Number.isInteger(pid) && pid > 0 ? { mariadb: pid } : {};
  } catch {
    return {};
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
