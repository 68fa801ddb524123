/**
 * How meshgate opens PostgreSQL, for the state store, the audit anchors and the audit
 * export alike: bounded waits everywhere (connect, statement, and a client-side read timeout
 * for a server that stops answering mid-query), a pool that survives a broken idle
 * connection, and tables created once under an advisory lock so replicas starting together
 * take turns.
 */
import pg from 'pg';
import { mgError } from '../errors/index.ts';

export interface PgPoolOptions {
  /** libpq-style URL; its password never appears in errors or `target`. */
  readonly connectionString: string;
  /** The schema named in messages (and created by createTablesOnce). */
  readonly schema: string;
  readonly max: number;
  readonly applicationName: string;
  readonly connectTimeoutMs?: number;
  readonly statementTimeoutMs?: number;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;
export const DEFAULT_STATEMENT_TIMEOUT_MS = 5_000;
/** Lets the server's own statement_timeout error arrive first; it says more than a read timeout. */
const READ_TIMEOUT_SLACK_MS = 1_000;
/** First half of the advisory lock key ("mgst"); the second is the schema name's hash. */
const DDL_LOCK_CLASS = 0x6d677374;

/** A pool that has not connected yet: the first query connects. */
export function openPgPool(options: PgPoolOptions): { pool: pg.Pool; target: Target } {
  const statementTimeoutMs = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const target = postgresTarget(options.connectionString, options.schema, statementTimeoutMs);
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    statement_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + READ_TIMEOUT_SLACK_MS,
    keepAlive: true,
    max: options.max,
    application_name: options.applicationName,
  });
  // An idle connection that breaks (server restart) is reported here; the pool already drops
  // it and the next query reconnects, but an unhandled 'error' event would end the process.
  pool.on('error', () => undefined);
  return { pool, target };
}

/**
 * Runs `ddl` (CREATE … IF NOT EXISTS statements) in one transaction unless `table` exists.
 * A replica whose user may not run DDL still starts once an owner has created the table.
 * `schema`, when given, is created first.
 */
export async function createTablesOnce(pool: pg.Pool, lockName: string, table: string, ddl: readonly string[], schema?: string): Promise<void> {
  const found = await pool.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [table]);
  if (found.rows[0]?.present === true) return;
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // CREATE ... IF NOT EXISTS is not safe against a concurrent identical CREATE (it can fail
    // on a unique violation in the catalog); replicas starting together take turns here.
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [DDL_LOCK_CLASS, lockName]);
    if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    for (const statement of ddl) await client.query(statement);
    await client.query('COMMIT');
    client.release();
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    // Passing the error makes the pool discard this connection instead of reusing it.
    client.release(error instanceof Error ? error : true);
    throw error;
  }
}

/** Where the store is, for messages; built from the parsed connection string, never from its text. */
export interface Target {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  readonly schema: string;
  readonly statementTimeoutMs: number;
}

/** Where a connection string points, for error messages; refuses one pg cannot parse. */
export function postgresTarget(connectionString: string, schema: string, statementTimeoutMs: number): Target {
  let parsed: pg.Client;
  try {
    parsed = new pg.Client({ connectionString });
  } catch {
    // The parser's error can quote the string, password included: it is deliberately not kept.
    throw mgError('MG_CONFIG_INVALID', 'the PostgreSQL connection string cannot be parsed; use the form postgres://user:password@host:port/database');
  }
  return {
    host: parsed.host,
    port: parsed.port,
    database: parsed.database ?? parsed.user ?? '(default)',
    user: parsed.user ?? '(default)',
    password: typeof parsed.password === 'string' ? parsed.password : '',
    schema,
    statementTimeoutMs,
  };
}
