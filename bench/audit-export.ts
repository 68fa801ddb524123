/**
 * `npm run bench:audit-export`: the audit export to PostgreSQL, and `audit query` on what it
 * wrote against the same query over the JSONL log.
 *
 *   export   N statement events (10 identities, 200 trace ids, rotation every 64 MiB) written
 *            by the real sink, then exported from scratch into a fresh table by the real
 *            export (batch sizes from MESHGATE_BENCH_BATCHES): events/s into PostgreSQL.
 *   query    the same filters through `audit query` (in process) over the JSONL log and over
 *            the table with --postgres: a narrow filter (one trace id), a medium one (one
 *            identity, SELECTs), everything counted (--type statement), and the digest.
 *
 * One JSON line per measurement on stdout. Options (env): MESHGATE_BENCH_EVENTS (default
 * 100000), MESHGATE_BENCH_BATCHES (default 100,500,2000), MESHGATE_BENCH_PG_URL (default the
 * tests' postgres://postgres@127.0.0.1:5432/test). The table (mgt_auditpg_bench_<run>) is
 * dropped at the end.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startAuditExport } from '../src/audit-pg/index.ts';
import { openAuditSeal } from '../src/audit/seal.ts';
import { openJsonlAuditSink } from '../src/audit/jsonl-sink.ts';
import type { StatementEvent } from '../src/audit/types.ts';
import type { CliIO, OptionValues } from '../src/cli/command.ts';
import { queryCommand } from '../src/cli/commands/audit-query.ts';

const EVENTS = Number(process.env.MESHGATE_BENCH_EVENTS ?? 100_000);
const BATCHES = (process.env.MESHGATE_BENCH_BATCHES ?? '100,500,2000').split(',').map(Number);
const PG_URL = process.env.MESHGATE_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUN = randomBytes(3).toString('hex');
const dir = await mkdtemp(join(tmpdir(), 'meshgate-bench-auditpg-'));
const file = join(dir, 'audit.jsonl');
const silent = { info: () => undefined, warn: () => undefined, error: (m: string, f?: Record<string, unknown>) => console.error(m, f) };
const traceOf = (n: number) => (n % 200).toString(16).padStart(32, 'a');

function statement(n: number): StatementEvent {
  const who = `app${n % 10}`;
  const select = n % 4 !== 0;
  return {
    type: 'statement',
    time: new Date(Date.UTC(2026, 0, 1) + n * 10).toISOString(),
    sessionId: `s${n % 64}`,
    engine: 'mysql',
    identity: { spiffeId: `spiffe://bench.meshgate.local/ns/bench/sa/${who}`, principal: `bench.meshgate.local/ns/bench/sa/${who}`, trustDomain: 'bench.meshgate.local', namespace: 'bench', serviceAccount: who, authMethod: 'mtls' },
    traceId: traceOf(n),
    command: 'query',
    verb: select ? 'SELECT' : 'UPDATE',
    statement: select ? `SELECT id, name, qty FROM items WHERE id = ${n % 10_000}` : `UPDATE items SET qty = qty - 1 WHERE id = ${n % 10_000}`,
    database: 'shop',
    decision: 'allow',
    rule: `rule-${who}`,
    upstreamRole: 'shop_rw',
    upstreamConnectionId: 1000 + (n % 64),
    rowsReturned: select ? 1 : 0,
    rowsAffected: select ? 0 : 1,
    durationUs: 300 + (n % 500),
    outcome: 'completed',
    error: null,
  };
}

async function sql(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

async function query(args: string[]): Promise<{ ms: number; lines: number }> {
  const parsed = parseArgs({ args, options: queryCommand.options, allowPositionals: true, strict: true });
  let lines = 0;
  const io: CliIO = { out: () => void lines++, err: () => undefined, cwd: process.cwd(), env: {} };
  const start = performance.now();
  await queryCommand.run(parsed.values as OptionValues, parsed.positionals, io);
  return { ms: Math.round(performance.now() - start), lines };
}

const tables: string[] = [];
try {
  const seal = await openAuditSeal({ file, rotate: { maxBytes: 64 * 1024 * 1024 } });
  const sink = await openJsonlAuditSink(file, { batchDelayMs: 0, afterBatch: seal.afterBatch, highWaterEvents: 100_000 });
  for (let n = 0; n < EVENTS; n++) {
    sink.record(statement(n));
    if (n % 5_000 === 4_999) await sink.flush();
  }
  await sink.close();
  await seal.close();

  let table = '';
  for (const batch of BATCHES) {
    table = `mgt_auditpg_bench_${RUN}_${batch}`;
    tables.push(table);
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const start = performance.now();
    const exp = startAuditExport({ connectionString: PG_URL, table, replica: 'bench', auditFile: file, batch, intervalMs: 3_600_000, log: silent });
    await exp.catchUp();
    const seconds = (performance.now() - start) / 1000;
    const { exportedSeq } = exp.status();
    loop.disable();
    await exp.close(0);
    // How long the export held the event loop the relay's sessions share.
    const stall = { loop_p99_ms: Number((loop.percentile(99) / 1e6).toFixed(1)), loop_max_ms: Number((loop.max / 1e6).toFixed(1)) };
    console.log(JSON.stringify({ measure: 'export', events: EVENTS, lines: exportedSeq, batch, seconds: Number(seconds.toFixed(2)), events_per_s: Math.round(exportedSeq / seconds), ...stall, load: loadavg()[0]!.toFixed(1) }));
  }
  await sql(`ANALYZE ${table}`);

  const cases: [string, string[]][] = [
    ['one trace id', ['--trace', traceOf(7), '--json']],
    ['one identity, SELECT', ['--identity', '*/sa/app3', '--verb', 'select', '--json']],
    ['all statements', ['--type', 'statement', '--json']],
    ['digest', ['--digest', '--json']],
  ];
  for (const [name, args] of cases) {
    const jsonl = await query([file, ...args]);
    const postgres = await query(['--postgres', PG_URL, '--table', table, ...args]);
    if (jsonl.lines !== postgres.lines) throw new Error(`${name}: ${jsonl.lines} lines from the file, ${postgres.lines} from PostgreSQL`);
    console.log(JSON.stringify({ measure: 'query', query: name, results: jsonl.lines, jsonl_ms: jsonl.ms, postgres_ms: postgres.ms, load: loadavg()[0]!.toFixed(1) }));
  }
} finally {
  for (const table of tables) await sql(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}
