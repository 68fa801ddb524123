/**
 * The exported audit as an `audit query` event source, across replicas, in time order. The
 * filters are pushed into the WHERE clause as far as SQL can say them, always as a superset
 * (globs become LIKE patterns, a trace id prefix a LIKE prefix, verbs an array overlap), and
 * the query's own filter still judges each event: the answer is the one the JSONL source
 * gives, only fetched with an index instead of a scan.
 */
import type pg from 'pg';
import { parseTraceparent, type AuditEventSource, type QueryFilterInput, type SourcedEvent } from '../audit/index.ts';
import { mgError } from '../errors/index.ts';
import { openPgPool, storeError, type PostgresTarget } from '../store/index.ts';
import { auditTable, HEADER_TYPE, type AuditTable } from './table.ts';

export interface PostgresSourceOptions {
  readonly connectionString: string;
  readonly table?: string;
  /** Only these replicas; default all. */
  readonly replicas?: readonly string[];
  readonly filter: QueryFilterInput;
  /** The window the query's filter computed (epoch ms). */
  readonly window: { readonly since: number | null; readonly until: number | null };
  readonly pageRows?: number;
}

export interface PostgresEventSource extends AuditEventSource {
  close(): Promise<void>;
}

const split = (values: readonly string[] | undefined): string[] =>
  (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');

/** `audit query`'s glob (* any run, ? one character) as a LIKE pattern. */
export function likeOf(glob: string): string {
  let out = '';
  for (const c of glob) out += c === '*' ? '%' : c === '?' ? '_' : c === '%' || c === '_' || c === '\\' ? `\\${c}` : c;
  return out;
}

function tracePrefix(value: string): string | null {
  const parent = parseTraceparent(value.toLowerCase());
  if (parent !== null) return parent.traceId;
  return /^[0-9a-f]{8,32}$/i.test(value) ? value.toLowerCase() : null;
}

/** The WHERE clause and its parameters. */
export function whereOf(options: Pick<PostgresSourceOptions, 'replicas' | 'filter' | 'window'>): { sql: string; values: unknown[] } {
  const clauses: string[] = [];
  const values: unknown[] = [];
  const param = (value: unknown) => `$${values.push(value)}`;
  const f = options.filter;
  clauses.push(`type IS DISTINCT FROM ${param(HEADER_TYPE)}`);
  if (options.replicas !== undefined && options.replicas.length > 0) clauses.push(`replica = ANY(${param([...options.replicas])}::text[])`);
  const globs = (values: readonly string[] | undefined) => (values ?? []).map((v) => likeOf(v.trim()));
  if (f.identity?.length) clauses.push(`EXISTS (SELECT 1 FROM unnest(identities) AS i(name) WHERE i.name LIKE ANY(${param(globs(f.identity))}::text[]))`);
  if (f.namespace?.length) clauses.push(`namespace LIKE ANY(${param(globs(f.namespace))}::text[])`);
  if (f.database?.length) clauses.push(`database LIKE ANY(${param(globs(f.database))}::text[])`);
  if (f.rule?.length) clauses.push(`rule LIKE ANY(${param(globs(f.rule))}::text[])`);
  if (f.trace?.length) {
    const prefixes = f.trace.map((t) => tracePrefix(t.trim()));
    if (prefixes.every((p) => p !== null)) clauses.push(`trace_id LIKE ANY(${param(prefixes.map((p) => `${p}%`))}::text[])`);
  }
  if (f.decision?.length) clauses.push(`decision = ANY(${param(split(f.decision).map((v) => v.toLowerCase()))}::text[])`);
  if (f.type?.length) clauses.push(`type = ANY(${param(split(f.type).map((v) => v.toLowerCase()))}::text[])`);
  if (f.engine?.length) clauses.push(`engine = ANY(${param(split(f.engine).map((v) => v.toLowerCase()))}::text[])`);
  if (f.verb?.length) clauses.push(`verbs && ${param(split(f.verb).map((v) => v.toLowerCase()))}::text[]`);
  if (f.collection?.length) clauses.push(`cardinality(paths) > 0`);
  if (options.window.since !== null) clauses.push(`ts >= ${param(new Date(options.window.since).toISOString())}::timestamptz`);
  if (options.window.until !== null) clauses.push(`ts < ${param(new Date(options.window.until).toISOString())}::timestamptz`);
  return { sql: clauses.join(' AND '), values };
}

export function openPostgresEventSource(options: PostgresSourceOptions): PostgresEventSource {
  const table = auditTable(options.table);
  const { pool, target } = openPgPool({ connectionString: options.connectionString, schema: table.schema ?? 'public', max: 1, applicationName: 'meshgate-audit-query', statementTimeoutMs: 60_000 });
  return new Source(pool, target, table, options);
}

class Source implements PostgresEventSource {
  readonly name: string;
  readonly #found: string[] = [];

  constructor(
    private readonly pool: pg.Pool,
    private readonly target: PostgresTarget,
    private readonly table: AuditTable,
    private readonly options: PostgresSourceOptions,
  ) {
    this.name = `table ${table.name} at ${target.host}:${target.port}/${target.database}`;
  }

  notes(): readonly string[] {
    return this.#found;
  }

  async *events(): AsyncGenerator<SourcedEvent[]> {
    this.#found.length = 0;
    const where = whereOf(this.options);
    const pageRows = this.options.pageRows ?? 2_000;
    let unreadable = 0;
    await this.#exists();
    // One query read through a cursor, a page per FETCH: one sort (or one index scan) for the
    // whole answer, held in PostgreSQL rather than here, however many rows match.
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw storeError(this.target, error);
    }
    let done = false;
    try {
      await client.query('BEGIN READ ONLY');
      await client.query(
        `DECLARE audit_rows NO SCROLL CURSOR FOR SELECT replica, file, line, line_text FROM ${this.table.sql} WHERE ${where.sql} ORDER BY ts, replica, seq`,
        where.values,
      );
      for (;;) {
        const { rows } = await client.query<{ replica: string; file: number; line: number; line_text: string }>(`FETCH ${pageRows} FROM audit_rows`);
        const batch: SourcedEvent[] = [];
        for (const row of rows) {
          const event = parseObject(row.line_text);
          if (event === null) unreadable++;
          else batch.push({ event, where: `${row.replica} file ${row.file}:${row.line}` });
        }
        if (batch.length > 0) yield batch;
        if (rows.length < pageRows) break;
      }
      await client.query('COMMIT');
      done = true;
    } catch (error) {
      throw storeError(this.target, error);
    } finally {
      // Stopped early (--limit) or failed: the connection goes rather than back with a transaction open.
      client.release(done ? undefined : true);
    }
    if (unreadable > 0) this.#found.push(`${unreadable} row${unreadable === 1 ? '' : 's'} of ${this.table.name} hold a line that is not a JSON event: passed over; 'meshgate audit verify --postgres' says what happened`);
  }

  async #exists(): Promise<void> {
    let present: boolean | undefined;
    try {
      present = (await this.pool.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [this.table.sql])).rows[0]?.present;
    } catch (error) {
      throw storeError(this.target, error);
    }
    if (present !== true) throw mgError('MG_AUDIT_NOT_FOUND', `no table ${this.table.name} at ${this.target.host}:${this.target.port}/${this.target.database}: give the table audit.export.postgres.table names (--table), or check that the export ran`);
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
