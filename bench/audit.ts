/**
 * `npm run bench:audit`: the audit writer alone, on the disk the audit file would live on.
 *
 *   buffered  statement events recorded as fast as the sink takes them (sessions holding
 *             back while it is backlogged, as the relay does), until all are on disk:
 *             events/s. Baseline in the same run: the same bytes appended with no
 *             serialization or hashing.
 *   strict    N sessions, each recording an intent and waiting for its group commit before
 *             the next: latency p50/p99 and events/s. Baseline in the same run: one small
 *             write + fdatasync at a time, the floor a group commit cannot beat.
 *
 * One JSON line per measurement on stdout. Options (env): MESHGATE_BENCH_AUDIT_DIR (default
 * the OS temp dir), MESHGATE_BENCH_EVENTS (default 300000), MESHGATE_BENCH_SECONDS (default 3
 * per strict measurement), MESHGATE_BENCH_SESSIONS (default 1,16,64).
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventBody, sealLine, GENESIS_HASH } from '../src/audit/chain.ts';
import { auditTime } from '../src/audit/clock.ts';
import { openJsonlAuditSink, type JsonlAuditSink } from '../src/audit/jsonl-sink.ts';
import type { StatementEvent } from '../src/audit/types.ts';

const EVENTS = Number(process.env.MESHGATE_BENCH_EVENTS ?? 300_000);
const SECONDS = Number(process.env.MESHGATE_BENCH_SECONDS ?? 3);
const SESSIONS = (process.env.MESHGATE_BENCH_SESSIONS ?? '1,16,64').split(',').map(Number);
const dir = await mkdtemp(join(process.env.MESHGATE_BENCH_AUDIT_DIR ?? tmpdir(), 'meshgate-bench-audit-'));

/** A statement event as the relay records one: realistic size and shape. */
function statement(n: number): StatementEvent {
  return {
    type: 'statement',
    time: auditTime(),
    sessionId: `s${n % 64}`,
    engine: 'mysql',
    identity: { spiffeId: 'spiffe://bench.meshgate.local/ns/bench/sa/loadgen', principal: 'bench.meshgate.local/ns/bench/sa/loadgen', trustDomain: 'bench.meshgate.local', namespace: 'bench', serviceAccount: 'loadgen', authMethod: 'mtls' },
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    command: 'query',
    verb: 'SELECT',
    statement: `SELECT id, name, qty FROM items WHERE id = ${n % 10_000}`,
    database: 'mgbench',
    decision: 'allow',
    rule: 'bench',
    upstreamRole: 'bench_reader',
    upstreamConnectionId: 42,
    outcome: 'completed',
    rowsReturned: 1,
    rowsAffected: 0,
    durationUs: 180,
    error: null,
  };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

/** events/s, and CPU µs per event (this process, all threads): the figure a busy machine does not distort. */
async function buffered(): Promise<{ rate: number; cpuUs: number }> {
  const sink = await openJsonlAuditSink(join(dir, 'buffered.jsonl'), { durability: 'buffered' });
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  let n = 0;
  while (n < EVENTS) {
    // A session's burst, then back to the event loop; held back while backlogged, as the relay is.
    for (let i = 0; i < 256 && n < EVENTS; i++) sink.record(statement(n++));
    if (sink.backlogged) await new Promise<void>((resolve) => sink.onDrain(resolve));
    else await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await sink.flush();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  await sink.close();
  return { rate: EVENTS / seconds, cpuUs: (used.user + used.system) / EVENTS };
}

/** The same number of lines of the same size, appended in 4096-line writes: no JSON, no hash. */
async function bareAppend(): Promise<number> {
  const line = sealLine(GENESIS_HASH, eventBody(statement(1), 1, GENESIS_HASH)).line;
  const chunk = Buffer.from(line.repeat(4096));
  const file = await open(join(dir, 'bare.jsonl'), 'a');
  const started = process.hrtime.bigint();
  for (let written = 0; written < EVENTS; written += 4096) await file.write(chunk);
  await file.datasync();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await file.close();
  return EVENTS / seconds;
}

async function strict(sink: JsonlAuditSink, sessions: number): Promise<{ latencies: number[]; events: number; seconds: number }> {
  const latencies: number[] = [];
  const deadline = Date.now() + SECONDS * 1000;
  const started = process.hrtime.bigint();
  let n = 0;
  await Promise.all(
    Array.from({ length: sessions }, async () => {
      while (Date.now() < deadline) {
        const t0 = process.hrtime.bigint();
        sink.record(statement(n++));
        await new Promise<void>((resolve, reject) => sink.whenDurable((error) => (error === null ? resolve() : reject(error))));
        latencies.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
    }),
  );
  return { latencies: latencies.sort((a, b) => a - b), events: latencies.length, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

/** One ~600-byte write + fdatasync at a time: what a single durable append costs on this disk. */
async function bareSync(): Promise<number[]> {
  const file = await open(join(dir, 'sync.jsonl'), 'a');
  const line = Buffer.from(sealLine(GENESIS_HASH, eventBody(statement(1), 1, GENESIS_HASH)).line);
  const latencies: number[] = [];
  const deadline = Date.now() + SECONDS * 1000;
  while (Date.now() < deadline) {
    const t0 = process.hrtime.bigint();
    await file.write(line);
    await file.datasync();
    latencies.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  await file.close();
  return latencies.sort((a, b) => a - b);
}

try {
  const base = await bareAppend();
  const run = await buffered();
  console.log(
    JSON.stringify({
      scenario: 'audit_buffered',
      events: EVENTS,
      events_per_s: Math.round(run.rate),
      cpu_us_per_event: Math.round(run.cpuUs * 100) / 100,
      events_per_cpu_s: Math.round(1e6 / run.cpuUs),
      bare_append_events_per_s: Math.round(base),
      target_events_per_s: 100_000,
      load_average_1m: Math.round(loadavg()[0]! * 10) / 10,
    }),
  );
  const floor = await bareSync();
  const sink = await openJsonlAuditSink(join(dir, 'strict.jsonl'), { durability: 'strict' });
  for (const sessions of SESSIONS) {
    const run = await strict(sink, sessions);
    console.log(
      JSON.stringify({
        scenario: 'audit_strict_group_commit',
        sessions,
        events_per_s: Math.round(run.events / run.seconds),
        p50_us: Math.round(percentile(run.latencies, 50)),
        p99_us: Math.round(percentile(run.latencies, 99)),
        bare_fdatasync_p50_us: Math.round(percentile(floor, 50)),
        bare_fdatasync_p99_us: Math.round(percentile(floor, 99)),
      }),
    );
  }
  await sink.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}
