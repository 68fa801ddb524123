/**
 * `npm run bench:mysql`: point selects direct to MariaDB, through a plain Node TCP relay,
 * through the fair peers of an mTLS proxy (a Node TLS relay, and HAProxy terminating TLS with
 * `verify required` where the `haproxy` Debian package is installed; TLS 1.3, client
 * certificates), and through meshgate (mTLS + policy + audit + tagging, STARTTLS and
 * first-byte TLS), in one run on the same machine, at 1, 8 and 32 connections, text and
 * prepared; each path MESHGATE_BENCH_REPEATS times (default 3), interleaved, medians
 * reported with each process's CPU per query. One JSON line per scenario on stdout.
 *
 * Options (env): MESHGATE_BENCH_SECONDS (default 3 per measurement), MESHGATE_BENCH_CONNECTS (default 300),
 * MESHGATE_BENCH_AUDIT_DURABILITY (strict or buffered; default: the config's default),
 * MESHGATE_BENCH_TRACING=1 (a span for every statement and login, exported over OTLP/HTTP to a
 * sink in this process that reads and drops them), MESHGATE_BENCH_METRICS=1 (Prometheus metrics
 * on, on a plain listener this process scrapes every MESHGATE_BENCH_SCRAPE_MS, default 1000),
 * MESHGATE_BENCH_THROTTLE=1 (service classes with limits the load never reaches),
 * MESHGATE_BENCH_REPEATS (default 3), MESHGATE_BENCH_PATHS (e.g. tls_relay,haproxy_tls: only
 * those beside meshgate), MESHGATE_BENCH_IDLE_SESSIONS (default 500; 0: skip the memory per
 * idle session of each proxy, RSS delta).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import mysql from 'mysql2/promise';
import { stringify } from 'yaml';
import { provision } from '../src/demo/provision.ts';
import { initCa, issueServerCert, issueSvid } from '../src/identity/ca.ts';
import { startHaproxy } from './haproxy.ts';
import { idleSessionCost } from './idle.ts';
import { connectLatency, firstByteTls, tlsHandshakes, type Mode } from './load.ts';
import { runInterleaved, scenarioLine, type Path } from './peers.ts';

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
let restoreMaxConnections: () => Promise<void> = async () => undefined;
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
  // The same meshgate in each of its TLS modes, each with an audit file of its own.
  const writeMeshgateConfig = (mode: 'starttls' | 'first-byte') =>
    writeFile(
      join(dir, `meshgate-${mode}.yaml`),
      stringify({
        listener: { port: 0, tls: { mode, cert: server.certPath, key: server.keyPath } },
        trust: { bundles: [client.bundlePath], trustDomains: [TRUST_DOMAIN] },
        upstream: { host: MARIADB.host, port: MARIADB.port, roles: { [ROLE]: { user: account.user, password: { file: 'reader.pw' } } } },
        policy: { dir: 'policy' },
        audit: {
          file: `audit-${mode}.jsonl`,
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
  await writeMeshgateConfig('starttls');
  await writeMeshgateConfig('first-byte');
  const relay = await startChild('relay-child.ts', [MARIADB.host, String(MARIADB.port)]);
  // MESHGATE_BENCH_PROFILE profiles the Node TLS relay too: the same TLS work without meshgate's.
  const relayProfile = process.env.MESHGATE_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.MESHGATE_BENCH_PROFILE}`, '--cpu-prof-name=tls-relay.cpuprofile'] : [];
  const tlsRelay = await startChild('tls-relay-child.ts', [MARIADB.host, String(MARIADB.port), server.certPath, server.keyPath, client.bundlePath], relayProfile);
  const haproxy = await startHaproxy(dir, { cert: server.certPath, key: server.keyPath, ca: client.bundlePath }, MARIADB);
  if (haproxy === null) process.stderr.write('bench:mysql: haproxy is not installed (apt-get install haproxy); haproxy_tls figures are null\n');
  // MESHGATE_BENCH_PROFILE=DIR writes a V8 CPU profile of the meshgate process there.
  const profile = process.env.MESHGATE_BENCH_PROFILE;
  const nodeFlags = (process.env.MESHGATE_BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
  if (profile) nodeFlags.push('--cpu-prof', `--cpu-prof-dir=${profile}`);
  const meshgate = await startChild('meshgate-child.ts', [join(dir, 'meshgate-starttls.yaml')], nodeFlags);
  const meshgateFirstByte = await startChild('meshgate-child.ts', [join(dir, 'meshgate-first-byte.yaml')], nodeFlags);
  children.push(relay.child, tlsRelay.child, meshgate.child, meshgateFirstByte.child, ...(haproxy === null ? [] : [haproxy.child]));
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

  const pems = { cert: ssl.cert, key: ssl.key, ca: ssl.ca };
  const paths: Path[] = [
    { name: 'direct', options: direct, proxyPid: null },
    { name: 'relay', options: viaRelay, proxyPid: relay.child.pid! },
    { name: 'tls_relay', options: firstByteTls({ ...base, port: tlsRelay.port }, pems), proxyPid: tlsRelay.child.pid! },
    ...(haproxy === null ? [] : [{ name: 'haproxy_tls', options: firstByteTls({ ...base, port: haproxy.port }, pems), proxyPid: haproxy.child.pid! }]),
    { name: 'meshgate_starttls', options: viaMeshgate, proxyPid: meshgate.child.pid! },
    { name: 'meshgate_first_byte', options: firstByteTls({ ...viaMeshgate, port: meshgateFirstByte.port }, pems), proxyPid: meshgateFirstByte.child.pid! },
  ];
  const modes = (process.env.MESHGATE_BENCH_MODES ?? 'text,prepared').split(',') as Mode[];
  const connectionCounts = (process.env.MESHGATE_BENCH_CONNECTIONS ?? '1,8,32').split(',').map(Number);
  const repeats = Number(process.env.MESHGATE_BENCH_REPEATS ?? 3);
  const only = process.env.MESHGATE_BENCH_PATHS?.split(',');
  const measured = only === undefined ? paths : paths.filter((path) => only.includes(path.name) || path.name === 'meshgate_starttls');
  if (haproxy !== null) process.stderr.write(`bench:mysql: HAProxy ${haproxy.version}, mode tcp, TLS 1.3 verify required, nbthread 1\n`);
  // First, on fresh processes: after the load their heaps have grown, and new sessions would
  // fit in memory already taken.
  const idleCount = Number(process.env.MESHGATE_BENCH_IDLE_SESSIONS ?? 500);
  if (idleCount > 0) {
    // Each idle session holds a MariaDB connection too: MariaDB's default max_connections (151)
    // is raised for the measurement, and put back.
    // Put back only at the very end: connections just closed take a moment to leave MariaDB.
    restoreMaxConnections = await ensureMaxConnections(idleCount + 100);
    const kib: Record<string, unknown> = {};
    for (const path of measured) if (path.proxyPid !== null) kib[path.name] = await idleSessionCost(path, idleCount);
    console.log(JSON.stringify({ scenario: 'idle_sessions', sessions: idleCount, per_path: kib }));
  }
  for (const mode of modes) {
    for (const connections of connectionCounts) {
      const runs = await runInterleaved(measured, { mode, connections, seconds: SECONDS, rows: ROWS, repeats }, { client: process.pid, ...mariadbPid() });
      console.log(JSON.stringify(scenarioLine(mode, connections, runs)));
    }
  }
  // Connection setup to the first result: full TLS handshakes, and resumed ones (a ticket from the last connect).
  const connects: Record<string, { p50_us: number; p99_us: number; tls_resumed?: string }> = {};
  const connectPaths: [string, mysql.ConnectionOptions][] = [
    ['direct_plaintext', direct],
    ...(['full', 'resumed'] as const).flatMap((kind): [string, mysql.ConnectionOptions][] => {
      const resume = { resume: kind === 'resumed' };
      return [
        [`tls_relay_${kind}`, firstByteTls({ ...base, port: tlsRelay.port }, pems, resume)],
        ...(haproxy === null ? [] : [[`haproxy_tls_${kind}`, firstByteTls({ ...base, port: haproxy.port }, pems, resume)] as [string, mysql.ConnectionOptions]]),
        [`meshgate_first_byte_${kind}`, firstByteTls({ ...viaMeshgate, port: meshgateFirstByte.port }, pems, resume)],
      ];
    }),
    // mysql2's own STARTTLS, which offers the session of its last connection with the same ssl object.
    ['meshgate_starttls_mysql2', viaMeshgate],
  ];
  for (const [name, options] of connectPaths) {
    const { p50Us, p99Us } = await connectLatency(options, CONNECTS);
    const tls = tlsHandshakes(options);
    connects[name] = { p50_us: p50Us, p99_us: p99Us, ...(tls === null ? {} : { tls_resumed: `${tls.resumed}/${tls.handshakes}` }) };
  }
  console.log(JSON.stringify({ scenario: 'connect_to_first_result', connections: 1, samples: CONNECTS, per_path: connects }));
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
  await restoreMaxConnections();
  await rm(dir, { recursive: true, force: true });
}

/** Raises MariaDB's max_connections to at least `wanted` (saying so); the returned function puts it back. */
async function ensureMaxConnections(wanted: number): Promise<() => Promise<void>> {
  const admin = await mysql.createConnection(MARIADB);
  try {
    const [rows] = await admin.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.max_connections AS n');
    const current = Number(rows[0]!['n']);
    if (current >= wanted) return async () => undefined;
    process.stderr.write(`bench:mysql: MariaDB max_connections ${current} → ${wanted} for the idle-session measurement (put back after)\n`);
    await admin.query(`SET GLOBAL max_connections = ${wanted}`);
    return async () => {
      const again = await mysql.createConnection(MARIADB);
      await again.query(`SET GLOBAL max_connections = ${current}`).finally(() => again.end());
    };
  } finally {
    await admin.end();
  }
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

