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
 * idle session of each proxy, RSS delta), MESHGATE_BENCH_SOURCE=1 (meshgate from the sources
 * through tsx; by default dist/ is built and `meshgate serve` runs it, as deployed),
 * MESHGATE_BENCH_WORKERS=N (one more path: `serve --workers N`, its CPU the sum of its processes),
 * MESHGATE_BENCH_BASELINE=DIR (another checkout, e.g. a worktree of main: its meshgate in
 * STARTTLS mode runs as path `meshgate_baseline` beside this one, and each line gains
 * `baseline_qps` and `starttls_vs_baseline`).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { startHaproxy } from './haproxy.ts';
import { ensureMaxConnections, idleSessionCost } from './idle.ts';
import { connectLatency, firstByteTls, tlsHandshakes, type Mode } from './load.ts';
import { runInterleaved, scenarioLine, type Path } from './peers.ts';
import { startServe } from './serve.ts';
import { benchSetup, MARIADB, startChild } from './setup.ts';

const SECONDS = Number(process.env.MESHGATE_BENCH_SECONDS ?? 3);
const CONNECTS = Number(process.env.MESHGATE_BENCH_CONNECTS ?? 300);
const ROWS = 10_000;

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
const setup = await benchSetup({
  database: 'mgbench',
  role: 'reader',
  privileges: ['SELECT'],
  setupSql: [
    'CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT NOT NULL)',
    `INSERT INTO {db}.items SELECT seq, CONCAT('item-', seq), seq % 100 FROM {db}.seq_1_to_${ROWS}`,
  ],
});
try {
  const { dir, server, client } = setup;
  // The same meshgate in each of its TLS modes, each with an audit file of its own.
  const writeMeshgateConfig = (mode: 'starttls' | 'first-byte') =>
    setup.writeMeshgateConfig(mode, {
      mode,
      audit: {
        tagStatements: process.env.MESHGATE_BENCH_TAG !== '0',
        ...(process.env.MESHGATE_BENCH_AUDIT_DURABILITY === undefined ? {} : { durability: process.env.MESHGATE_BENCH_AUDIT_DURABILITY }),
      },
      sections: {
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
      },
    });
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
  const meshgate = await startServe(join(dir, 'meshgate-starttls.yaml'), nodeFlags);
  const meshgateFirstByte = await startServe(join(dir, 'meshgate-first-byte.yaml'), nodeFlags);
  // MESHGATE_BENCH_BASELINE=DIR: another checkout's meshgate (STARTTLS, the same config), measured beside this one.
  const baselineRoot = process.env.MESHGATE_BENCH_BASELINE;
  const baseline = baselineRoot === undefined ? null : await startServe(await setup.writeMeshgateConfig('baseline', { mode: 'starttls', audit: { tagStatements: process.env.MESHGATE_BENCH_TAG !== '0' } }), nodeFlags, baselineRoot);
  // MESHGATE_BENCH_WORKERS=N: `serve --workers N` (STARTTLS, the same config) as one more path.
  const workerCount = process.env.MESHGATE_BENCH_WORKERS;
  const workers = workerCount === undefined ? null : await startServe(await setup.writeMeshgateConfig('workers', { mode: 'starttls', audit: { tagStatements: process.env.MESHGATE_BENCH_TAG !== '0' } }), nodeFlags, undefined, ['--workers', workerCount]);
  children.push(relay.child, tlsRelay.child, meshgate.child, meshgateFirstByte.child, ...(haproxy === null ? [] : [haproxy.child]), ...(baseline === null ? [] : [baseline.child]), ...(workers === null ? [] : [workers.child]));
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

  const base = setup.base;
  const direct = { ...base, port: MARIADB.port };
  const viaRelay = { ...base, port: relay.port };
  const ssl = { cert: setup.pems.cert, key: setup.pems.key, ca: setup.pems.ca };
  const viaMeshgate = { ...base, port: meshgate.port, user: 'loadgen', password: '', ssl };

  const pems = { cert: ssl.cert, key: ssl.key, ca: ssl.ca };
  const paths: Path[] = [
    { name: 'direct', options: direct, proxyPid: null },
    { name: 'relay', options: viaRelay, proxyPid: relay.child.pid! },
    { name: 'tls_relay', options: firstByteTls({ ...base, port: tlsRelay.port }, pems), proxyPid: tlsRelay.child.pid! },
    ...(haproxy === null ? [] : [{ name: 'haproxy_tls', options: firstByteTls({ ...base, port: haproxy.port }, pems), proxyPid: haproxy.child.pid! }]),
    { name: 'meshgate_starttls', options: viaMeshgate, proxyPid: meshgate.child.pid! },
    { name: 'meshgate_first_byte', options: firstByteTls({ ...viaMeshgate, port: meshgateFirstByte.port }, pems), proxyPid: meshgateFirstByte.child.pid! },
    ...(baseline === null ? [] : [{ name: 'meshgate_baseline', options: { ...viaMeshgate, port: baseline.port }, proxyPid: baseline.child.pid! }]),
    ...(workers === null ? [] : [{ name: 'meshgate_workers', options: { ...viaMeshgate, port: workers.port }, proxyPid: workers.pids }]),
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
    restoreMaxConnections = await ensureMaxConnections(idleCount + 100, 'bench:mysql', 'the idle-session measurement');
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
  await setup.drop();
  await restoreMaxConnections();
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

