/**
 * The load of bench:soak, and what it checks afterwards. Every statement acknowledged is
 * counted by the protocol command it went as (query, prepare, execute), so the audit log can
 * be held to it: one statement event per command sent through meshgate, no more, no fewer.
 */
import mysql from 'mysql2/promise';
import { listLogFiles, logLayout, verifyAuditLog } from '../src/audit/index.ts';
import { linesForward } from '../src/audit/lines.ts';
import { percentile } from './load.ts';

/** Commands acknowledged by MariaDB (through meshgate), by audit `command`; and the rest. */
export interface Sent {
  query: number;
  prepare: number;
  execute: number;
  /** Sessions that logged in (one `connection` event each). */
  connects: number;
  errors: number;
  /** The first few errors' messages, to say what went wrong. */
  readonly errorSamples: string[];
}

export function newSent(): Sent {
  return { query: 0, prepare: 0, execute: 0, connects: 0, errors: 0, errorSamples: [] };
}

export function statementsOf(sent: Sent): number {
  return sent.query + sent.prepare + sent.execute;
}

function failed(sent: Sent, error: unknown): void {
  sent.errors++;
  if (sent.errorSamples.length < 5) sent.errorSamples.push(error instanceof Error ? `${(error as { code?: string }).code ?? error.name}: ${error.message}` : String(error));
}

const SELECT = 'SELECT id, name, qty FROM items WHERE id = ?';

/**
 * One point select, as text or prepared. mysql2 prepares a statement the first time a
 * connection executes it (one COM_STMT_PREPARE, audited as `prepare`), then executes it from
 * its cache: `prepared` tracks which connections did, to count the prepares.
 */
async function pointSelect(conn: mysql.Connection, id: number, text: boolean, prepared: WeakSet<mysql.Connection>, sent: Sent): Promise<void> {
  const [rows] = text ? await conn.query<mysql.RowDataPacket[]>(`SELECT id, name, qty FROM items WHERE id = ${id}`) : await conn.execute<mysql.RowDataPacket[]>(SELECT, [id]);
  if (text) sent.query++;
  else {
    sent.execute++;
    if (!prepared.has(conn)) {
      prepared.add(conn);
      sent.prepare++;
    }
  }
  // A wrong answer is an error too: a proxy that mixes up sessions answers quickly.
  if (rows.length !== 1 || rows[0]!['id'] !== id) throw new Error(`SELECT of id ${id} returned ${rows.length} rows (first id ${String(rows[0]?.['id'])})`);
}

export interface SoakOptions {
  readonly workers: number;
  readonly seconds: number;
  readonly rows: number;
  /** Each connection closes and logs in again after this many statements. */
  readonly reconnectEvery: number;
  /** Every this many statements, a write (INSERT and UPDATE in turn) instead of a select. */
  readonly writeEvery: number;
}

/**
 * `workers` connections in a closed loop for `seconds`: text and prepared point selects in
 * turn, a write every `writeEvery` statements, and a new session every `reconnectEvery`, so
 * login, session teardown and the upstream pool are soaked as well as the statement path.
 * `sent` is updated as answers come, for the samples taken meanwhile.
 */
export async function soakLoad(options: mysql.ConnectionOptions, soak: SoakOptions, sent: Sent): Promise<void> {
  const end = performance.now() + soak.seconds * 1000;
  const prepared = new WeakSet<mysql.Connection>();
  await Promise.all(
    Array.from({ length: soak.workers }, async (_, worker) => {
      let n = worker * 7919;
      // Staggered first sessions: the workers do not all log in again at the same moment.
      let budget = soak.reconnectEvery - Math.floor((worker * soak.reconnectEvery) / soak.workers);
      while (performance.now() < end) {
        let conn: mysql.Connection | null = null;
        try {
          conn = await mysql.createConnection(options);
          sent.connects++;
          for (let i = 0; i < budget && performance.now() < end; i++) {
            n++;
            if (n % soak.writeEvery === 0) await write(conn, worker, n, soak.writeEvery, sent);
            else await pointSelect(conn, (n % soak.rows) + 1, n % 2 === 0, prepared, sent);
          }
        } catch (error) {
          failed(sent, error);
        } finally {
          const open = conn;
          if (open !== null) await open.end().catch(() => open.destroy());
        }
        budget = soak.reconnectEvery;
      }
    }),
  );
}

async function write(conn: mysql.Connection, worker: number, n: number, writeEvery: number, sent: Sent): Promise<void> {
  const [result] =
    (n / writeEvery) % 2 === 0
      ? await conn.query<mysql.ResultSetHeader>(`INSERT INTO soak_events (worker, n) VALUES (${worker}, ${n})`)
      : await conn.query<mysql.ResultSetHeader>(`UPDATE soak_counters SET n = n + 1 WHERE worker = ${worker}`);
  sent.query++;
  if (result.affectedRows !== 1) throw new Error(`a write at statement ${n} of worker ${worker} affected ${result.affectedRows} rows`);
}

export interface SessionsOptions {
  readonly sessions: number;
  readonly queriesPerSession: number;
  /** Sessions logging in at once while they are opened. */
  readonly openBatch: number;
  readonly rows: number;
}

export interface SessionsResult {
  readonly opened: number;
  readonly openSeconds: number;
  readonly queries: number;
  readonly queriesSeconds: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
}

/**
 * Opens `sessions` sessions (in batches of `openBatch` logins at once), then has every one
 * run `queriesPerSession` point selects, all sessions at once, each its next when the last
 * answered: that many sessions active together, not merely open. `onOpened` runs once they
 * all are, before the queries (to read memory there).
 */
export async function concurrentSessions(options: mysql.ConnectionOptions, run: SessionsOptions, sent: Sent, onOpened: () => void): Promise<SessionsResult> {
  const conns: mysql.Connection[] = [];
  const prepared = new WeakSet<mysql.Connection>();
  try {
    const openStart = performance.now();
    for (let opened = 0; opened < run.sessions; opened += run.openBatch) {
      const batch = await Promise.allSettled(Array.from({ length: Math.min(run.openBatch, run.sessions - opened) }, () => mysql.createConnection(options)));
      for (const result of batch) {
        if (result.status === 'fulfilled') {
          conns.push(result.value);
          sent.connects++;
        } else failed(sent, result.reason);
      }
    }
    const openSeconds = (performance.now() - openStart) / 1000;
    onOpened();
    const latencies: number[] = [];
    const start = performance.now();
    await Promise.all(
      conns.map(async (conn, c) => {
        try {
          for (let k = 0; k < run.queriesPerSession; k++) {
            const begun = performance.now();
            await pointSelect(conn, ((c * run.queriesPerSession + k) % run.rows) + 1, (c + k) % 2 === 0, prepared, sent);
            latencies.push((performance.now() - begun) * 1000);
          }
        } catch (error) {
          failed(sent, error);
        }
      }),
    );
    const queriesSeconds = (performance.now() - start) / 1000;
    latencies.sort((a, b) => a - b);
    return {
      opened: conns.length,
      openSeconds,
      queries: latencies.length,
      queriesSeconds,
      p50Us: percentile(latencies, 0.5),
      p99Us: percentile(latencies, 0.99),
      maxUs: Math.round(latencies.at(-1) ?? 0),
    };
  } finally {
    await Promise.all(conns.map((conn) => conn.end().catch(() => conn.destroy())));
  }
}

export interface AuditCheck {
  /** `meshgate audit verify`'s answer: the chain, files and checkpoints intact. */
  readonly verified: boolean;
  readonly findings: string[];
  readonly events: number;
  readonly connections: number;
  readonly statements: number;
  readonly byCommand: Record<string, number>;
  /** Statement events that are not an allowed, completed command. */
  readonly notCompleted: number;
  /** Statement events match what was acknowledged, command by command; one connection event a login. */
  readonly matches: boolean;
}

/** Verifies the audit log meshgate wrote (after it stopped) and holds its events to `sent`. */
export async function checkAudit(path: string, sent: Sent): Promise<AuditCheck> {
  const verification = await verifyAuditLog(path);
  const byCommand: Record<string, number> = {};
  let connections = 0;
  let statements = 0;
  let notCompleted = 0;
  for (const file of await listLogFiles(logLayout(path))) {
    for await (const line of linesForward(file.path)) {
      // Only the fields counted are looked at; verify has checked the rest.
      const event = JSON.parse(line.bytes.toString('utf8')) as { type?: string; command?: string; decision?: string; outcome?: string };
      if (event.type === 'connection' && event.decision === 'allow') connections++;
      if (event.type !== 'statement') continue;
      statements++;
      byCommand[event.command!] = (byCommand[event.command!] ?? 0) + 1;
      if (event.decision !== 'allow' || event.outcome !== 'completed') notCompleted++;
    }
  }
  const matches =
    statements === statementsOf(sent) &&
    byCommand['query'] === sent.query &&
    (byCommand['prepare'] ?? 0) === sent.prepare &&
    (byCommand['execute'] ?? 0) === sent.execute &&
    connections === sent.connects &&
    notCompleted === 0;
  return {
    verified: verification.ok,
    findings: verification.findings.map((f) => `${f.kind}: ${f.message}`),
    events: verification.events,
    connections,
    statements,
    byCommand,
    notCompleted,
    matches,
  };
}

/** Least-squares slope of y over x. */
export function slope(points: readonly { readonly x: number; readonly y: number }[]): number {
  if (points.length < 2) return Number.NaN;
  const mx = points.reduce((s, p) => s + p.x, 0) / points.length;
  const my = points.reduce((s, p) => s + p.y, 0) / points.length;
  const sxy = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return sxx === 0 ? Number.NaN : sxy / sxx;
}
