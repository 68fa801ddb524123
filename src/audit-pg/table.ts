/**
 * The table the audit export writes and `audit query`/`verify --postgres` read: one row per
 * line of each replica's log, keyed by (replica, seq), so sending a batch again changes
 * nothing. Each row keeps the line's exact text (to re-verify the chain byte for byte), the
 * event as jsonb (for a SIEM's own queries), and the fields `audit query` filters on as
 * columns. Those columns are derived from the line by `columnsOf` alone, so verify can
 * recompute them and tell a row whose columns were changed apart from its line.
 */
import { FILE_HEADER_TYPE } from '../audit/index.ts';
import { mgError } from '../errors/index.ts';

export const DEFAULT_AUDIT_TABLE = 'meshgate_audit_events';
const TABLE_NAME = /^(?:[a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$/;

export interface AuditTable {
  /** As given: `meshgate_audit_events` or `audit.events`. */
  readonly name: string;
  /** Quoted for SQL. */
  readonly sql: string;
  readonly schema: string | null;
}

export function auditTable(name: string = DEFAULT_AUDIT_TABLE): AuditTable {
  if (!TABLE_NAME.test(name)) {
    throw mgError('MG_USAGE', `the table name ${JSON.stringify(name)} is not allowed: lower-case letters, digits and _ (at most 63, not starting with a digit), optionally schema.table`);
  }
  const parts = name.split('.');
  return { name, sql: parts.map((p) => `"${p}"`).join('.'), schema: parts.length === 2 ? parts[0]! : null };
}

export function tableDdl(t: AuditTable): string[] {
  const index = (suffix: string) => `"${t.name.replace('.', '_').slice(0, 40)}_${suffix}"`;
  return [
    `CREATE TABLE IF NOT EXISTS ${t.sql} (
      replica text NOT NULL,
      seq bigint NOT NULL,
      stream text NOT NULL,
      file integer NOT NULL,
      line integer NOT NULL,
      end_offset bigint NOT NULL,
      prev text NOT NULL,
      hash text NOT NULL,
      ts timestamptz NOT NULL,
      type text,
      engine text,
      identity text,
      identities text[] NOT NULL,
      namespace text,
      trace_id text,
      decision text,
      rule text,
      database text,
      verbs text[] NOT NULL,
      paths text[] NOT NULL,
      event jsonb NOT NULL,
      line_text text NOT NULL,
      exported_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (replica, seq)
    )`,
    // audit query reads in time order across replicas, most often narrowed to a trace. Each
    // index costs every INSERT (the export's rate): add others for a SIEM's own queries.
    `CREATE INDEX IF NOT EXISTS ${index('ts')} ON ${t.sql} (ts, replica, seq)`,
    `CREATE INDEX IF NOT EXISTS ${index('trace')} ON ${t.sql} (trace_id)`,
  ];
}

/** What a row holds besides its position (replica, stream, file, line) and the line's own seq, prev and hash. */
export interface RowColumns {
  /** ISO time; the epoch when the line has none (meshgate writes none such). */
  readonly ts: string;
  readonly type: string | null;
  readonly engine: string | null;
  readonly identity: string | null;
  readonly identities: string[];
  readonly namespace: string | null;
  readonly traceId: string | null;
  readonly decision: string | null;
  readonly rule: string | null;
  readonly database: string | null;
  readonly verbs: string[];
  readonly paths: string[];
}

const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);
const NO_TIME = '1970-01-01T00:00:00.000Z';

export function columnsOf(record: Readonly<Record<string, unknown>>): RowColumns {
  const identity = typeof record['identity'] === 'object' && record['identity'] !== null ? (record['identity'] as Record<string, unknown>) : null;
  const identities = [identity?.['spiffeId'], identity?.['principal']];
  if (record['type'] === 'credential') identities.push(record['principal']);
  const time = str(record['time']);
  const parsed = time === null ? NaN : Date.parse(time);
  return {
    ts: Number.isNaN(parsed) ? NO_TIME : new Date(parsed).toISOString(),
    type: str(record['type']),
    engine: str(record['engine']),
    identity: str(identity?.['spiffeId']),
    identities: identities.filter((v): v is string => typeof v === 'string'),
    namespace: str(identity?.['namespace']),
    traceId: str(record['traceId']),
    decision: str(record['decision']),
    rule: str(record['rule']),
    database: str(record['database']),
    verbs: verbsOf(record).map((v) => v.toLowerCase()),
    paths: Array.isArray(record['paths']) ? record['paths'].filter((p): p is string => typeof p === 'string') : [],
  };
}

/** As `audit query --verb` reads them: every SQL verb of a statement, a Firestore call's method name. */
function verbsOf(event: Readonly<Record<string, unknown>>): string[] {
  if (event['type'] === 'rpc' || (event['type'] === 'intent' && event['engine'] === 'firestore')) {
    const method = event['type'] === 'rpc' ? event['method'] : event['command'];
    return typeof method === 'string' ? [method.slice(method.lastIndexOf('/') + 1)] : [];
  }
  if (event['type'] !== 'statement') return [];
  const verbs = Array.isArray(event['verbs']) ? event['verbs'] : [event['verb']];
  return verbs.filter((v): v is string => typeof v === 'string');
}

/** File headers are lines of the chain, exported and verified, but not events. */
export const HEADER_TYPE = FILE_HEADER_TYPE;

/**
 * The text jsonb is given: the line itself, except that jsonb refuses the escape \u0000 (a
 * NUL in a statement's text), which becomes U+FFFD there. line_text keeps the original.
 */
export function jsonbTextOf(lineText: string, record: Readonly<Record<string, unknown>>): string | null {
  if (!lineText.includes('\\u0000')) return null;
  return JSON.stringify(record, (_key, value: unknown) => (typeof value === 'string' ? value.replaceAll('\u0000', '\ufffd') : value));
}

/** A row as the export writes it. */
export interface ExportRow {
  readonly seq: number;
  readonly file: number;
  readonly line: number;
  /** The byte offset just past the line's '\\n' in its file: where a restarted export reads on. */
  readonly end: number;
  readonly prev: string;
  readonly hash: string;
  readonly columns: RowColumns;
  readonly lineText: string;
  /** Null: the line's text is the jsonb's. */
  readonly jsonb: string | null;
}

const INSERT_COLUMNS = 'replica, stream, seq, file, line, end_offset, prev, hash, ts, type, engine, identity, identities, namespace, trace_id, decision, rule, database, verbs, paths, event, line_text';
const PARAMS_PER_ROW = 20;
/** PostgreSQL takes at most 65535 parameters a statement: 2 + 20 a row. */
export const MAX_BATCH = 3_000;

/**
 * One multi-row INSERT for a whole batch (about a fifth faster than unnesting arrays, which
 * PostgreSQL must parse again element by element); the text for each batch size is made once.
 */
export function insertSql(t: AuditTable, rows: number): string {
  if (!Number.isSafeInteger(rows) || rows < 1 || rows > MAX_BATCH) throw new TypeError(`a batch holds 1 to ${MAX_BATCH} rows`);
  const values: string[] = [];
  for (let i = 0; i < rows; i++) {
    const p = (k: number) => `$${2 + i * PARAMS_PER_ROW + k}`;
    values.push(
      `($1, $2, ${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}::timestamptz, ${p(8)}, ${p(9)}, ${p(10)}, ${p(11)}::text[], ${p(12)}, ${p(13)}, ${p(14)}, ${p(15)}, ${p(16)}, ${p(17)}::text[], ${p(18)}::text[], COALESCE(${p(19)}, ${p(20)})::jsonb, ${p(20)})`,
    );
  }
  return `INSERT INTO ${t.sql} (${INSERT_COLUMNS}) VALUES ${values.join(', ')} ON CONFLICT (replica, seq) DO NOTHING`;
}

/** A text[] literal (`{"a","b"}`): what PostgreSQL parses fastest for a short array. */
export function arrayLiteral(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}

export function insertValues(replica: string, stream: string, rows: readonly ExportRow[]): unknown[] {
  const out: unknown[] = [replica, stream];
  for (const r of rows) {
    const c = r.columns;
    out.push(r.seq, r.file, r.line, r.end, r.prev, r.hash, c.ts, c.type, c.engine, c.identity, arrayLiteral(c.identities), c.namespace, c.traceId, c.decision, c.rule, c.database, arrayLiteral(c.verbs), arrayLiteral(c.paths), r.jsonb, r.lineText);
  }
  return out;
}
