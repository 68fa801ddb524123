/**
 * `npm run bench:soak`: meshgate under sustained load, for leaks and errors that a few seconds
 * of benchmark never show (issue 17, point 7). Two phases, each against a meshgate process of
 * its own (mTLS STARTTLS listener, policy, audit file at the default durability, tagging on):
 *
 * 1. soak: MESHGATE_SOAK_CONNECTIONS (default 32) connections for MESHGATE_SOAK_SECONDS
 *    (default 600): text and prepared point selects in turn, an INSERT or UPDATE on a table of
 *    the bench's own every MESHGATE_SOAK_WRITE_EVERY statements (default 50), and each
 *    connection logs in again every MESHGATE_SOAK_RECONNECT_EVERY statements (default 250).
 *    Every MESHGATE_SOAK_SAMPLE_SECONDS (default 10) one JSON line: meshgate's RSS, its CPU,
 *    queries per second, errors. Then a summary line, with the verdict on memory:
 *
 *    flat: the least-squares slope of RSS over the second half of the run, times the second
 *    half's length (the growth the trend accounts for, which GC's sawtooth does not fool), is
 *    under FLAT_BOUND_KIB (8 MiB) or 5 % of the RSS at the half, whichever is larger.
 *
 * 2. sessions: MESHGATE_SOAK_SESSIONS (default 1000) sessions opened (MESHGATE_SOAK_OPEN_BATCH
 *    logins at once, default 50), then all of them running MESHGATE_SOAK_SESSION_QUERIES point
 *    selects (default 10) at once: p50/p99 latency, meshgate's RSS. MariaDB's max_connections
 *    is raised for it if lower (each session holds a MariaDB connection), and put back.
 *
 * After each phase meshgate is stopped and its audit log verified as `meshgate audit verify`
 * does; its statement events must match, command by command, what MariaDB acknowledged
 * through it. Exit status 1 on any error, a memory trend that is not flat, or an audit log
 * that does not verify or match. MESHGATE_SOAK_PHASES=soak or =sessions runs one phase.
 */
import { once } from 'node:events';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { cpuMicros } from './cpu.ts';
import { ensureMaxConnections, rssKib } from './idle.ts';
import { startServe } from './serve.ts';
import { benchSetup, type BenchSetup } from './setup.ts';
import { checkAudit, concurrentSessions, newSent, slope, soakLoad, statementsOf, type AuditCheck, type Sent } from './soak-load.ts';

const env = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`${name} must be a number ≥ 0, got ${process.env[name]}`);
  return value;
};
const SECONDS = env('MESHGATE_SOAK_SECONDS', 600);
const CONNECTIONS = env('MESHGATE_SOAK_CONNECTIONS', 32);
const SAMPLE_SECONDS = env('MESHGATE_SOAK_SAMPLE_SECONDS', 10);
const RECONNECT_EVERY = env('MESHGATE_SOAK_RECONNECT_EVERY', 250);
const WRITE_EVERY = env('MESHGATE_SOAK_WRITE_EVERY', 50);
/** Samples before this are left out of the comparison: JIT, pools and buffers fill up first. */
const WARMUP_SECONDS = env('MESHGATE_SOAK_WARMUP_SECONDS', Math.min(60, SECONDS / 5));
const SESSIONS = env('MESHGATE_SOAK_SESSIONS', 1000);
const SESSION_QUERIES = env('MESHGATE_SOAK_SESSION_QUERIES', 10);
const OPEN_BATCH = env('MESHGATE_SOAK_OPEN_BATCH', 50);
const PHASES = (process.env.MESHGATE_SOAK_PHASES ?? 'soak,sessions').split(',');
const ROWS = 10_000;
const FLAT_BOUND_KIB = 8 * 1024;
const FLAT_BOUND_SHARE = 0.05;

const print = (line: Record<string, unknown>) => console.log(JSON.stringify(line));

/** Stops of the meshgate processes started, for a cleanup after an interruption. */
const running = new Set<() => Promise<void>>();

/** A meshgate process of its own for one phase, stopped (its audit flushed) by `stop`. */
async function startMeshgate(setup: BenchSetup, name: string) {
  const config = await setup.writeMeshgateConfig(name, { mode: 'starttls', audit: { tagStatements: true } });
  const { child, port } = await startServe(config);
  const options: mysql.ConnectionOptions = { ...setup.base, port, user: 'loadgen', password: '', ssl: { ...setup.pems } };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  };
  running.add(stop);
  return { pid: child.pid!, options, stop, auditPath: join(setup.dir, `audit-${name}.jsonl`) };
}

function auditLine(phase: string, audit: AuditCheck, sent: Sent): Record<string, unknown> {
  return {
    phase,
    scenario: 'audit',
    verified: audit.verified,
    findings: audit.findings.slice(0, 5),
    events: audit.events,
    statement_events: audit.statements,
    statements_acknowledged: statementsOf(sent),
    by_command: audit.byCommand,
    acknowledged_by_command: { query: sent.query, prepare: sent.prepare, execute: sent.execute },
    connection_events: audit.connections,
    logins: sent.connects,
    not_completed: audit.notCompleted,
    matches: audit.matches,
  };
}

/** Phase 1; true when it passed. */
async function soakPhase(setup: BenchSetup): Promise<boolean> {
  const meshgate = await startMeshgate(setup, 'soak');
  const sent = newSent();
  const samples: { t: number; rssKib: number }[] = [];
  let load: Promise<void> = Promise.resolve();
  try {
    const started = performance.now();
    load = soakLoad(meshgate.options, { workers: CONNECTIONS, seconds: SECONDS, rows: ROWS, reconnectEvery: RECONNECT_EVERY, writeEvery: WRITE_EVERY }, sent);
    let last = { at: started, statements: 0, cpu: cpuMicros(meshgate.pid) };
    for (let k = 1; k * SAMPLE_SECONDS <= SECONDS; k++) {
      await new Promise((resolve) => setTimeout(resolve, started + k * SAMPLE_SECONDS * 1000 - performance.now()));
      const now = { at: performance.now(), statements: statementsOf(sent), cpu: cpuMicros(meshgate.pid) };
      const seconds = (now.at - last.at) / 1000;
      const sample = { t: Math.round((now.at - started) / 1000), rssKib: rssKib(meshgate.pid) };
      samples.push(sample);
      print({
        phase: 'soak',
        t_s: sample.t,
        rss_kib: sample.rssKib,
        meshgate_cpu_pct: Math.round(((now.cpu - last.cpu) / 1e6 / seconds) * 100),
        qps: Math.round((now.statements - last.statements) / seconds),
        statements: now.statements,
        logins: sent.connects,
        errors: sent.errors,
      });
      last = now;
    }
    await load;
    const elapsed = (performance.now() - started) / 1000;
    const afterWarmup = samples.find((s) => s.t >= WARMUP_SECONDS) ?? samples[0];
    const lastSample = samples.at(-1);
    const secondHalf = samples.filter((s) => s.t >= SECONDS / 2);
    const kibPerMin = slope(secondHalf.map((s) => ({ x: s.t / 60, y: s.rssKib })));
    const growthKib = (kibPerMin * SECONDS) / 2 / 60;
    const boundKib = Math.max(FLAT_BOUND_KIB, FLAT_BOUND_SHARE * (secondHalf[0]?.rssKib ?? 0));
    // Two samples make a slope, but not one worth a verdict.
    const flat = secondHalf.length >= 2 && growthKib < boundKib;
    print({
      phase: 'soak',
      scenario: 'summary',
      seconds: Math.round(elapsed),
      connections: CONNECTIONS,
      statements: statementsOf(sent),
      logins: sent.connects,
      errors: sent.errors,
      error_samples: sent.errorSamples,
      qps: Math.round(statementsOf(sent) / elapsed),
      rss_after_warmup_kib: afterWarmup?.rssKib ?? null,
      rss_last_kib: lastSample?.rssKib ?? null,
      rss_second_half_min_kib: secondHalf.length === 0 ? null : Math.min(...secondHalf.map((s) => s.rssKib)),
      rss_second_half_max_kib: secondHalf.length === 0 ? null : Math.max(...secondHalf.map((s) => s.rssKib)),
      rss_slope_second_half_kib_per_min: Math.round(kibPerMin * 10) / 10,
      rss_growth_second_half_kib: Math.round(growthKib),
      flat_bound_kib: Math.round(boundKib),
      flat,
    });
    await meshgate.stop();
    const audit = await checkAudit(meshgate.auditPath, sent);
    print(auditLine('soak', audit, sent));
    return sent.errors === 0 && flat && audit.verified && audit.matches;
  } finally {
    await load.catch(() => undefined);
    await meshgate.stop();
  }
}

/** Phase 2; true when it passed. */
async function sessionsPhase(setup: BenchSetup): Promise<boolean> {
  const meshgate = await startMeshgate(setup, 'sessions');
  const sent = newSent();
  try {
    const rssStartKib = rssKib(meshgate.pid);
    let rssOpenKib = 0;
    let rssPeakKib = 0;
    const watch = setInterval(() => (rssPeakKib = Math.max(rssPeakKib, rssKib(meshgate.pid))), 250);
    const result = await concurrentSessions(meshgate.options, { sessions: SESSIONS, queriesPerSession: SESSION_QUERIES, openBatch: OPEN_BATCH, rows: ROWS }, sent, () => {
      rssOpenKib = rssKib(meshgate.pid);
    }).finally(() => clearInterval(watch));
    print({
      phase: 'sessions',
      scenario: 'summary',
      sessions: SESSIONS,
      opened: result.opened,
      open_seconds: Math.round(result.openSeconds * 10) / 10,
      queries_per_session: SESSION_QUERIES,
      queries: result.queries,
      errors: sent.errors,
      error_samples: sent.errorSamples,
      qps: Math.round(result.queries / result.queriesSeconds),
      p50_us: result.p50Us,
      p99_us: result.p99Us,
      max_us: result.maxUs,
      rss_start_kib: rssStartKib,
      rss_all_open_kib: rssOpenKib,
      rss_peak_kib: Math.max(rssPeakKib, rssOpenKib),
    });
    await meshgate.stop();
    const audit = await checkAudit(meshgate.auditPath, sent);
    print(auditLine('sessions', audit, sent));
    return sent.errors === 0 && result.opened === SESSIONS && result.queries === SESSIONS * SESSION_QUERIES && audit.verified && audit.matches;
  } finally {
    await meshgate.stop();
  }
}

const setup = await benchSetup({
  database: 'mgsoak',
  role: 'app',
  privileges: ['SELECT', 'INSERT', 'UPDATE'],
  setupSql: [
    'CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT NOT NULL)',
    `INSERT INTO {db}.items SELECT seq, CONCAT('item-', seq), seq % 100 FROM {db}.seq_1_to_${ROWS}`,
    // The soak's writes: rows appended, and one counter per worker updated in place.
    'CREATE TABLE {db}.soak_events (id BIGINT AUTO_INCREMENT PRIMARY KEY, worker INT NOT NULL, n INT NOT NULL, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))',
    'CREATE TABLE {db}.soak_counters (worker INT PRIMARY KEY, n BIGINT NOT NULL)',
    `INSERT INTO {db}.soak_counters SELECT seq, 0 FROM {db}.seq_0_to_${Math.max(0, CONNECTIONS - 1)}`,
  ],
});
let restoreMaxConnections: () => Promise<void> = async () => undefined;
let passed = true;
let cleaned: Promise<void> | null = null;
/** Once, whichever way the run ends: meshgate processes, database, account, role, max_connections. */
const cleanUp = () =>
  (cleaned ??= (async () => {
    for (const stop of running) await stop().catch(() => undefined);
    try {
      await setup.drop();
    } finally {
      await restoreMaxConnections();
    }
  })());
// Interrupted (Ctrl-C, a CI timeout): the finally below would never run. `on`, not `once`:
// under tsx a Ctrl-C arrives twice (from the terminal and relayed by tsx), and with no
// listener left the second would end the process before the cleanup.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`bench:soak: ${signal}, cleaning up\n`);
    void cleanUp()
      .catch((error: unknown) => process.stderr.write(`bench:soak: cleaning up failed: ${String(error)}\n`))
      .finally(() => process.exit(130));
  });
}
try {
  if (PHASES.includes('soak')) passed = (await soakPhase(setup)) && passed;
  if (PHASES.includes('sessions')) {
    // The soak's own connections may still be leaving MariaDB; other users need some too.
    restoreMaxConnections = await ensureMaxConnections(SESSIONS + 100, 'bench:soak', `${SESSIONS} concurrent sessions`);
    passed = (await sessionsPhase(setup)) && passed;
  }
} catch (error) {
  passed = false;
  throw error;
} finally {
  await cleanUp();
  if (!passed) process.exitCode = 1;
}
