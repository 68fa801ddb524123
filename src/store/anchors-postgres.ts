/**
 * Audit anchors in PostgreSQL, table `audit_anchors` in the state schema, shared by every
 * replica (each anchors its own log under its own id). One INSERT … ON CONFLICT with the
 * compare in its WHERE clause, so the row lock decides between racing writers and an
 * anchor never moves backwards.
 */
import pg from 'pg';
import { mgError } from '../errors/index.ts';
import { storeError, type Target } from './postgres.ts';
import { createTablesOnce, openPgPool } from './postgres-pool.ts';
import type { AuditAnchor, AuditAnchorInput, AuditAnchorStore } from './anchors.ts';

export interface PostgresAnchorStoreOptions {
  readonly connectionString: string;
  /** Default `meshgate`, the schema of the leases. */
  readonly schema?: string;
  readonly now?: () => number;
  readonly connectTimeoutMs?: number;
  readonly statementTimeoutMs?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const COLUMNS = 'id, stream, file, seq, head, time, checkpoint, updated_at';

interface AnchorRow {
  id: string;
  stream: string;
  file: number;
  /** int8 arrives as a string. */
  seq: string;
  head: string;
  time: string;
  checkpoint: string | null;
  updated_at: string;
}

function fromRow(row: AnchorRow): AuditAnchor {
  return { id: row.id, stream: row.stream, file: row.file, seq: Number(row.seq), head: row.head, time: row.time, checkpoint: row.checkpoint, updatedAt: Number(row.updated_at) };
}

class PostgresAnchorStore implements AuditAnchorStore {
  readonly location: string;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly target: Target,
    private readonly table: string,
    private readonly now: () => number,
  ) {
    this.location = `${target.host}:${target.port}/${target.database} schema ${target.schema}`;
  }

  async getAnchor(id: string): Promise<AuditAnchor | null> {
    return (await this.rows(`SELECT ${COLUMNS} FROM ${this.table} WHERE id = $1`, [id]))[0] ?? null;
  }

  listAnchors(): Promise<AuditAnchor[]> {
    return this.rows(`SELECT ${COLUMNS} FROM ${this.table} ORDER BY id COLLATE "C"`, []);
  }

  async putAnchor(a: AuditAnchorInput, options: { readonly supersede?: boolean } = {}): Promise<boolean> {
    const rows = await this.rows(
      `INSERT INTO ${this.table} AS stored (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (id) DO UPDATE SET stream = EXCLUDED.stream, file = EXCLUDED.file, seq = EXCLUDED.seq, head = EXCLUDED.head,
         time = EXCLUDED.time, checkpoint = EXCLUDED.checkpoint, updated_at = EXCLUDED.updated_at
       WHERE (stored.stream = EXCLUDED.stream AND stored.seq <= EXCLUDED.seq) OR $9::boolean
       RETURNING ${COLUMNS}`,
      [a.id, a.stream, a.file, a.seq, a.head, a.time, a.checkpoint, this.now(), options.supersede === true],
    );
    return rows.length === 1;
  }

  close(): Promise<void> {
    this.closing ??= this.pool.end();
    return this.closing;
  }

  private async rows(text: string, values: unknown[]): Promise<AuditAnchor[]> {
    try {
      return (await this.pool.query<AnchorRow>(text, values)).rows.map(fromRow);
    } catch (error) {
      throw storeError(this.target, error);
    }
  }
}

async function ensureTable(pool: pg.Pool, schema: string, table: string): Promise<void> {
  await createTablesOnce(
    pool,
    schema,
    table,
    [
      `CREATE TABLE IF NOT EXISTS ${table} (
      id text PRIMARY KEY,
      stream text NOT NULL,
      file integer NOT NULL,
      seq bigint NOT NULL,
      head text NOT NULL,
      time text NOT NULL,
      checkpoint text,
      updated_at bigint NOT NULL
    )`,
    ],
    schema,
  );
}

/** Connects, creates the table when absent, and fails with MG_STORE_UNAVAILABLE when it cannot. */
export async function openPostgresAnchorStore(options: PostgresAnchorStoreOptions): Promise<AuditAnchorStore> {
  const schema = options.schema ?? 'meshgate';
  if (!SCHEMA_NAME.test(schema)) {
    throw mgError('MG_CONFIG_INVALID', `the PostgreSQL schema name "${schema}" is not allowed; use lower-case letters, digits and underscores (at most 63, not starting with a digit)`);
  }
  // Anchors are written a few times a minute: two connections are plenty.
  const { pool, target } = openPgPool({
    connectionString: options.connectionString,
    schema,
    max: 2,
    applicationName: 'meshgate-audit',
    ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }),
    ...(options.statementTimeoutMs === undefined ? {} : { statementTimeoutMs: options.statementTimeoutMs }),
  });
  const table = `"${schema}".audit_anchors`;
  try {
    await ensureTable(pool, schema, table);
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw storeError(target, error);
  }
  return new PostgresAnchorStore(pool, target, table, options.now ?? Date.now);
}
