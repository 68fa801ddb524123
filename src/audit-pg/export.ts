/**
 * The audit export: follows this replica's JSONL log into a PostgreSQL table, a batch at a
 * time, from the last line the table holds for the replica. The file stays the record and
 * the relay never waits on PostgreSQL: the export only reads the files the sink has written
 * (on a timer, in its own async steps), and when PostgreSQL is away it retries with backoff,
 * saying so once when it starts failing and once when it is back, and goes on from where it
 * stopped. Rows are keyed by (replica, seq) and inserted ON CONFLICT DO NOTHING, so a batch
 * sent twice (its acknowledgement lost) is stored once: at least once, without duplicates.
 */
import type pg from 'pg';
import { logLayout } from '../audit/index.ts';
import { isMeshgateError, type MeshgateError } from '../errors/index.ts';
import type { Logger } from '../log.ts';
import { createTablesOnce, openPgPool, storeError, type PostgresTarget } from '../store/index.ts';
import { LogReader, resumeAfter, startOfLog, type Cursor } from './reader.ts';
import { auditTable, insertSql, insertValues, MAX_BATCH, tableDdl, type AuditTable } from './table.ts';

export interface AuditExportOptions {
  readonly connectionString: string;
  readonly table?: string;
  /** This replica's name in the table (state.replicaId, or the host name). */
  readonly replica: string;
  /** The active audit file (audit.file). */
  readonly auditFile: string;
  readonly batch?: number;
  readonly intervalMs?: number;
  readonly log: Logger;
  /** Longest wait between attempts while PostgreSQL is away; default 30 s. */
  readonly maxBackoffMs?: number;
  readonly connectTimeoutMs?: number;
}

export interface AuditExportStatus {
  readonly replica: string;
  readonly table: string;
  /** The last seq the table is known to hold for this replica; 0 before the first batch. */
  readonly exportedSeq: number;
  /** When a batch last went in (epoch ms); null before the first. */
  readonly lastExportAt: number | null;
  /** PostgreSQL is failing: the export retries. */
  readonly failing: boolean;
  /** The export stopped for good (MG_AUDIT_EXPORT_STOPPED) until an operator acts and meshgate restarts. */
  readonly stopped: MeshgateError | null;
}

export interface AuditExport {
  status(): AuditExportStatus;
  /** Runs the export now, until it has caught up with the file or fails; resolves either way. */
  catchUp(): Promise<void>;
  /** Stops the timer; a last catch-up (at most `finalMs`, default 5 s), then the pool closes. */
  close(finalMs?: number): Promise<void>;
}

const DEFAULT_BATCH = 500;
const DEFAULT_INTERVAL_MS = 1_000;
const DEFAULT_MAX_BACKOFF_MS = 30_000;

export function startAuditExport(options: AuditExportOptions): AuditExport {
  return new Follower(options);
}

class Follower implements AuditExport {
  readonly #o: AuditExportOptions;
  readonly #table: AuditTable;
  readonly #pool: pg.Pool;
  readonly #target: PostgresTarget;
  readonly #reader: LogReader;
  readonly #intervalMs: number;
  /** The INSERT's text by batch size: most batches are full, so few are made. */
  readonly #inserts = new Map<number, string>();

  #cursor: Cursor | null = null;
  #prepared = false;
  #exportedSeq = 0;
  #lastExportAt: number | null = null;
  #failing: { since: number; attempts: number } | null = null;
  #stopped: MeshgateError | null = null;
  #backoffMs: number;
  #running: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  #poolEnded = false;

  constructor(options: AuditExportOptions) {
    this.#o = options;
    this.#table = auditTable(options.table);
    const { pool, target } = openPgPool({ connectionString: options.connectionString, schema: this.#table.schema ?? 'public', max: 1, applicationName: 'meshgate-audit-export', ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }) });
    this.#pool = pool;
    this.#target = target;
    this.#reader = new LogReader(logLayout(options.auditFile), Math.min(options.batch ?? DEFAULT_BATCH, MAX_BATCH));
    this.#intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.#backoffMs = this.#intervalMs;
    this.#schedule(0);
  }

  status(): AuditExportStatus {
    return { replica: this.#o.replica, table: this.#table.name, exportedSeq: this.#exportedSeq, lastExportAt: this.#lastExportAt, failing: this.#failing !== null, stopped: this.#stopped };
  }

  catchUp(): Promise<void> {
    this.#running ??= this.#run().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async close(finalMs = 5_000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    await this.#running;
    // What the sink wrote last (it is closed before the export): the next start would send it anyway.
    if (this.#stopped === null && this.#failing === null) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, finalMs)));
      await Promise.race([this.catchUp(), late]);
      clearTimeout(timer);
    }
    if (this.#exportedSeq > 0 || this.#failing !== null) {
      this.#o.log.info('audit export stopped with meshgate', { replica: this.#o.replica, table: this.#table.name, exportedSeq: this.#exportedSeq, behind: this.#failing !== null });
    }
    // A batch still in flight after finalMs ends with the pool; the next start sends it again.
    this.#poolEnded = true;
    await this.#pool.end().catch(() => undefined);
  }

  #schedule(ms: number): void {
    if (this.#closed || this.#stopped !== null) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.catchUp().then(() => this.#schedule(this.#failing === null ? this.#intervalMs : this.#backoffMs));
    }, ms);
    this.#timer.unref();
  }

  async #run(): Promise<void> {
    if (this.#stopped !== null) return;
    try {
      await this.#prepare();
      for (;;) {
        const cursor = this.#cursor;
        if (cursor === null) {
          // No log yet: the sink has not written its first line.
          this.#cursor = await startOfLog(logLayout(this.#o.auditFile));
          if (this.#cursor === null) break;
          continue;
        }
        const batch = await this.#reader.read(cursor);
        if (batch.rows.length > 0) {
          await this.#pool.query(this.#insertFor(batch.rows.length), insertValues(this.#o.replica, batch.stream, batch.rows));
          this.#exportedSeq = batch.rows.at(-1)!.seq;
          this.#lastExportAt = Date.now();
        } else if (sameCursor(batch.cursor, cursor)) {
          break;
        }
        this.#cursor = batch.cursor;
        this.#recovered();
      }
      this.#recovered();
    } catch (error) {
      if (isMeshgateError(error) && error.code === 'MG_AUDIT_EXPORT_STOPPED') {
        this.#stopped = error;
        this.#o.log.error('audit export to PostgreSQL stopped; the JSONL audit file goes on', { code: error.code, replica: this.#o.replica, table: this.#table.name, exportedSeq: this.#exportedSeq, error: error.message });
        return;
      }
      this.#failed(error);
    }
  }

  /**
   * At start, and again after every failure: where the table stands for this replica. A
   * PostgreSQL that failed over to a standby behind the primary, or was restored, can hold
   * less than the export sent; going on from memory would leave a hole, so the export goes on
   * from what the table holds (re-reading the file when that is behind where it stood).
   */
  async #prepare(): Promise<void> {
    if (this.#prepared) return;
    await createTablesOnce(this.#pool, this.#table.name, this.#table.sql, tableDdl(this.#table), this.#table.schema ?? undefined);
    const { rows } = await this.#pool.query<{ seq: string; hash: string; stream: string; file: number; line: number; end_offset: string }>(
      `SELECT seq, hash, stream, file, line, end_offset FROM ${this.#table.sql} WHERE replica = $1 ORDER BY seq DESC LIMIT 1`,
      [this.#o.replica],
    );
    const last = rows[0];
    const held = last === undefined ? 0 : Number(last.seq);
    if (this.#cursor === null || held !== this.#exportedSeq) {
      // More than it knew of is a batch whose answer was lost; less is rows gone.
      if (this.#cursor !== null && held < this.#exportedSeq) {
        this.#o.log.warn('the audit export table holds other lines of this replica than the export sent (PostgreSQL failed over or was restored?); the export goes on from what the table holds', { replica: this.#o.replica, table: this.#table.name, sent: this.#exportedSeq, held });
      }
      this.#cursor = last === undefined ? null : resumeAfter({ seq: held, hash: last.hash, stream: last.stream, file: last.file, line: last.line, end: Number(last.end_offset) });
      this.#exportedSeq = held;
    }
    this.#prepared = true;
  }

  #insertFor(rows: number): string {
    let text = this.#inserts.get(rows);
    if (text === undefined) {
      if (this.#inserts.size >= 64) this.#inserts.clear();
      text = insertSql(this.#table, rows);
      this.#inserts.set(rows, text);
    }
    return text;
  }

  #failed(error: unknown): void {
    // The last catch-up outran close's bound and the pool ended under it: the next start sends the rest.
    if (this.#poolEnded) return;
    this.#prepared = false;
    const reason = storeError(this.#target, error).message;
    if (this.#failing === null) {
      this.#failing = { since: Date.now(), attempts: 1 };
      this.#backoffMs = this.#intervalMs;
      this.#o.log.warn('audit export to PostgreSQL is failing; it retries with backoff and resumes where it stopped (the JSONL audit file goes on)', { replica: this.#o.replica, table: this.#table.name, exportedSeq: this.#exportedSeq, error: reason });
    } else {
      this.#failing.attempts++;
    }
    this.#backoffMs = Math.min(this.#backoffMs * 2, this.#o.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS);
  }

  #recovered(): void {
    if (this.#failing === null) return;
    const { since, attempts } = this.#failing;
    this.#failing = null;
    this.#backoffMs = this.#intervalMs;
    this.#o.log.info('audit export to PostgreSQL recovered', { replica: this.#o.replica, table: this.#table.name, exportedSeq: this.#exportedSeq, failedForMs: Date.now() - since, attempts });
  }
}

function sameCursor(a: Cursor, b: Cursor): boolean {
  return a.file === b.file && a.offset === b.offset && a.ino === b.ino && a.skipThrough === b.skipThrough && a.nextSeq === b.nextSeq && a.resumed === b.resumed;
}
