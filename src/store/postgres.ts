/**
 * The PostgreSQL state store, shared by every replica. Each state change is one UPDATE with
 * the expected state in its WHERE clause, so PostgreSQL's row lock decides which replica's
 * compare-and-set wins; no replica ever reads, decides and then writes.
 *
 * Every wait is bounded (connect, statement, and a client-side read timeout for a server
 * that stops answering mid-query): a lease request must fail fast, not hang a login.
 */
import { hostname } from 'node:os';
import pg from 'pg';
import { isMeshgateError, mgError, type MeshgateError } from '../errors/index.ts';
import { createTablesOnce, openPgPool, type Target } from './postgres-pool.ts';
export { postgresTarget, type Target } from './postgres-pool.ts';
import type { LeaseFilter, LeasePatch, LeasePurpose, LeaseRecord, LeaseState, StateStore } from './types.ts';

export interface PostgresStoreOptions {
  /** libpq-style URL; its password never appears in errors or `location`. */
  readonly connectionString: string;
  /** Default `meshgate`; created with its table when absent. */
  readonly schema?: string;
  /** Written into every record this store changes; defaults to host/pid. */
  readonly owner?: string;
  readonly now?: () => number;
  readonly connectTimeoutMs?: number;
  readonly statementTimeoutMs?: number;
}

const DEFAULT_SCHEMA = 'meshgate';
/** Lower-case only, so the schema name means the same quoted or not. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

const COLUMNS =
  'id, purpose, principal, role, database, username, user_host, state, created_at, expires_at, max_expires_at, updated_at, revoked_at, revoke_reason, owner';

const PATCH_COLUMNS = {
  expiresAt: 'expires_at',
  revokedAt: 'revoked_at',
  revokeReason: 'revoke_reason',
  owner: 'owner',
  updatedAt: 'updated_at',
} as const satisfies Record<keyof LeasePatch, string>;

interface LeaseRow {
  id: string;
  purpose: LeasePurpose;
  principal: string;
  role: string;
  database: string | null;
  username: string;
  user_host: string;
  state: LeaseState;
  /** int8 arrives as a string: pg will not guess whether it fits a number. */
  created_at: string;
  expires_at: string;
  max_expires_at: string;
  updated_at: string;
  revoked_at: string | null;
  revoke_reason: string | null;
  owner: string;
}

function where(t: Target): string {
  return `${t.host}:${t.port}/${t.database}`;
}

function toMs(value: string | null): number | null {
  return value === null ? null : Number(value);
}

function fromRow(row: LeaseRow): LeaseRecord {
  return {
    id: row.id,
    purpose: row.purpose,
    principal: row.principal,
    role: row.role,
    database: row.database,
    username: row.username,
    userHost: row.user_host,
    state: row.state,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    maxExpiresAt: Number(row.max_expires_at),
    updatedAt: Number(row.updated_at),
    revokedAt: toMs(row.revoked_at),
    revokeReason: row.revoke_reason,
    owner: row.owner,
  };
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EPIPE', 'ENOENT']);

/** Turns whatever pg or the network threw into MG_STORE_UNAVAILABLE that says what to check. */
export function storeError(t: Target, error: unknown): MeshgateError {
  if (isMeshgateError(error)) return error;
  // No message pg produces carries the password, but a server or proxy might echo it back.
  const redact = (text: string): string => (t.password === '' ? text : text.split(t.password).join('***'));
  const at = where(t);
  if (error instanceof pg.DatabaseError) {
    const detail = redact(error.message);
    switch (error.code) {
      case '3D000':
        return mgError('MG_STORE_UNAVAILABLE', `PostgreSQL at ${t.host}:${t.port} has no database "${t.database}"; create it (createdb) or fix the database name in the connection string`, error);
      case '28P01':
      case '28000':
        return mgError('MG_STORE_UNAVAILABLE', `PostgreSQL at ${at} refused the login of user "${t.user}" (${detail}); check the user and password in the connection string and the server's pg_hba.conf`, error);
      case '57014':
        return mgError('MG_STORE_UNAVAILABLE', `a statement on PostgreSQL at ${at} (schema ${t.schema}) ran longer than ${t.statementTimeoutMs} ms and was cancelled; check the server's load and locks, then retry`, error);
      case '42501':
        return mgError('MG_STORE_UNAVAILABLE', `user "${t.user}" lacks a privilege on PostgreSQL at ${at} (${detail}); grant it on schema ${t.schema} and its table leases, or have an owner create them`, error);
      case '53300':
        return mgError('MG_STORE_UNAVAILABLE', `PostgreSQL at ${at} has no free connections (${detail}); raise max_connections or lower the pool size of its other clients`, error);
      default:
        return mgError('MG_STORE_UNAVAILABLE', `PostgreSQL at ${at} (schema ${t.schema}) answered with error ${error.code ?? 'without a code'}: ${detail}; check the server log, then retry`, error);
    }
  }
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code !== undefined && NETWORK_CODES.has(code)) {
    return mgError('MG_STORE_UNAVAILABLE', `cannot reach PostgreSQL at ${at} (${code}); check that it is running and that the host and port in the connection string are right`, error);
  }
  const message = redact(error instanceof Error ? error.message : String(error));
  if (/timeout|timed out/i.test(message)) {
    return mgError('MG_STORE_UNAVAILABLE', `PostgreSQL at ${at} did not answer in time (${message}); check that it is running, reachable from this host and not overloaded`, error);
  }
  return mgError('MG_STORE_UNAVAILABLE', `lost the connection to PostgreSQL at ${at} (${message}); check the server and the network, then retry`, error);
}

function quoteIdent(name: string): string {
  return `"${name}"`;
}

async function ensureSchema(pool: pg.Pool, schema: string): Promise<void> {
  const table = `${quoteIdent(schema)}.leases`;
  await createTablesOnce(
    pool,
    schema,
    table,
    [
      `CREATE TABLE IF NOT EXISTS ${table} (
      id text PRIMARY KEY,
      purpose text NOT NULL CHECK (purpose IN ('session', 'issued')),
      principal text NOT NULL,
      role text NOT NULL,
      database text,
      username text NOT NULL,
      user_host text NOT NULL,
      state text NOT NULL CHECK (state IN ('creating', 'active', 'revoking', 'revoked')),
      created_at bigint NOT NULL,
      expires_at bigint NOT NULL,
      max_expires_at bigint NOT NULL,
      updated_at bigint NOT NULL,
      revoked_at bigint,
      revoke_reason text,
      owner text NOT NULL
    )`,
      // The reaper's queries: expired leases by state, and stale claims by state.
      `CREATE INDEX IF NOT EXISTS leases_state_expires_at ON ${table} (state, expires_at)`,
      `CREATE INDEX IF NOT EXISTS leases_state_updated_at ON ${table} (state, updated_at)`,
    ],
    schema,
  );
}

class PostgresStore implements StateStore {
  readonly kind = 'postgres' as const;
  readonly location: string;
  private readonly table: string;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly target: Target,
    private readonly owner: string,
    private readonly now: () => number,
  ) {
    this.location = `${where(target)} schema ${target.schema}`;
    this.table = `${quoteIdent(target.schema)}.leases`;
  }

  async createLease(r: LeaseRecord): Promise<void> {
    const values = [
      r.id, r.purpose, r.principal, r.role, r.database, r.username, r.userHost, r.state,
      r.createdAt, r.expiresAt, r.maxExpiresAt, r.updatedAt, r.revokedAt, r.revokeReason, r.owner,
    ];
    const placeholders = values.map((_, i) => `$${i + 1}`).join(', ');
    try {
      await this.pool.query(`INSERT INTO ${this.table} (${COLUMNS}) VALUES (${placeholders})`, values);
    } catch (error) {
      if (error instanceof pg.DatabaseError && error.code === '23505') {
        throw mgError('MG_STORE_CONFLICT', `lease ${r.id} already exists in ${this.location}; retry with a new lease id`, error);
      }
      throw storeError(this.target, error);
    }
  }

  async getLease(id: string): Promise<LeaseRecord | null> {
    const rows = await this.rows(`SELECT ${COLUMNS} FROM ${this.table} WHERE id = $1`, [id]);
    return rows[0] ?? null;
  }

  async listLeases(filter: LeaseFilter = {}): Promise<LeaseRecord[]> {
    const conditions: string[] = [];
    const values: unknown[] = [];
    const add = (condition: (placeholder: string) => string, value: unknown): void => {
      values.push(value);
      conditions.push(condition(`$${values.length}`));
    };
    if (filter.states !== undefined) add((p) => `state = ANY(${p}::text[])`, filter.states);
    if (filter.principal !== undefined) add((p) => `principal = ${p}`, filter.principal);
    if (filter.role !== undefined) add((p) => `role = ${p}`, filter.role);
    if (filter.purpose !== undefined) add((p) => `purpose = ${p}`, filter.purpose);
    if (filter.expiresBefore !== undefined) add((p) => `expires_at < ${p}`, filter.expiresBefore);
    if (filter.updatedBefore !== undefined) add((p) => `updated_at < ${p}`, filter.updatedBefore);
    const whereClause = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    // COLLATE "C": byte order, the same tie-break as the embedded store whatever the database's locale.
    return this.rows(`SELECT ${COLUMNS} FROM ${this.table} ${whereClause} ORDER BY created_at, id COLLATE "C"`, values);
  }

  async transitionLease(
    id: string,
    from: readonly LeaseState[],
    to: LeaseState,
    patch: LeasePatch = {},
    options: { readonly updatedBefore?: number } = {},
  ): Promise<LeaseRecord | null> {
    const assignments = new Map<string, unknown>([
      ['state', to],
      ['updated_at', this.now()],
      ['owner', this.owner],
    ]);
    // Only keys the patch actually sets: `{ revokedAt: undefined }` must not erase anything.
    for (const [key, column] of Object.entries(PATCH_COLUMNS) as [keyof LeasePatch, string][]) {
      if (patch[key] !== undefined) assignments.set(column, patch[key]);
    }
    const values: unknown[] = [id, [...from]];
    const sets = [...assignments].map(([column, value]) => {
      values.push(value);
      return `${column} = $${values.length}`;
    });
    let guard = '';
    if (options.updatedBefore !== undefined) {
      values.push(options.updatedBefore);
      guard = ` AND updated_at < $${values.length}`;
    }
    const rows = await this.rows(
      `UPDATE ${this.table} SET ${sets.join(', ')} WHERE id = $1 AND state = ANY($2::text[])${guard} RETURNING ${COLUMNS}`,
      values,
    );
    return rows[0] ?? null;
  }

  async pruneRevoked(before: number): Promise<number> {
    try {
      const result = await this.pool.query(
        `DELETE FROM ${this.table} WHERE state = 'revoked' AND COALESCE(revoked_at, updated_at) < $1`,
        [before],
      );
      return result.rowCount ?? 0;
    } catch (error) {
      throw storeError(this.target, error);
    }
  }

  close(): Promise<void> {
    this.closing ??= this.pool.end();
    return this.closing;
  }

  private async rows(text: string, values: unknown[]): Promise<LeaseRecord[]> {
    try {
      const result = await this.pool.query<LeaseRow>(text, values);
      return result.rows.map(fromRow);
    } catch (error) {
      throw storeError(this.target, error);
    }
  }
}

/** Connects, creates the schema and table when absent, and fails with MG_STORE_UNAVAILABLE when it cannot. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<StateStore> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  if (!SCHEMA_NAME.test(schema)) {
    throw mgError('MG_CONFIG_INVALID', `the PostgreSQL schema name "${schema}" is not allowed; use lower-case letters, digits and underscores (at most 63, not starting with a digit)`);
  }
  const { pool, target } = openPgPool({
    connectionString: options.connectionString,
    schema,
    max: 5,
    applicationName: 'meshgate',
    ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }),
    ...(options.statementTimeoutMs === undefined ? {} : { statementTimeoutMs: options.statementTimeoutMs }),
  });
  try {
    await ensureSchema(pool, schema);
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw storeError(target, error);
  }
  return new PostgresStore(pool, target, options.owner ?? `${hostname()}/${process.pid}`, options.now ?? Date.now);
}
