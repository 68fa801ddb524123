/**
 * `meshgate audit verify --postgres`: each replica's chain re-verified from the rows alone,
 * as verify checks a file, over each row's exact line text: every line matches its own hash,
 * seq counts up without a gap, each prev names the hash before. A changed line fails its
 * hash; a deleted row leaves a gap; rows whose lines were swapped or moved show a seq column
 * that disagrees with the line. The columns queries filter on, and the jsonb, are checked
 * against the line too, so a row changed only there (what a SIEM would read) shows as well.
 * As for a file, rows cut from the end of a replica's chain cannot show here: compare the
 * last hash with the replica's own `audit verify`.
 */
import { isDeepStrictEqual } from 'node:util';
import { GENESIS_HASH, openLine } from '../audit/index.ts';
import { openPgPool, storeError } from '../store/index.ts';
import { auditTable, columnsOf, jsonbTextOf, type RowColumns } from './table.ts';

export type PgFindingKind = 'edited' | 'broken' | 'missing' | 'reordered' | 'altered';

export interface PgFinding {
  readonly kind: PgFindingKind;
  readonly replica: string;
  /** The row's seq column. */
  readonly seq: number;
  /** Where the line was in the replica's log: file number and line. */
  readonly file: number;
  readonly line: number;
  readonly message: string;
}

export interface ReplicaChain {
  readonly replica: string;
  readonly rows: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly lastHash: string;
  readonly ok: boolean;
}

export interface PgVerification {
  readonly ok: boolean;
  readonly table: string;
  readonly replicas: ReplicaChain[];
  readonly findings: PgFinding[];
  readonly notes: string[];
}

export interface VerifyPostgresOptions {
  readonly connectionString: string;
  readonly table?: string;
  /** Only these replicas; default every replica in the table. */
  readonly replicas?: readonly string[];
  readonly pageRows?: number;
}

interface Row {
  seq: string;
  file: number;
  line: number;
  prev: string;
  hash: string;
  ts: Date;
  type: string | null;
  engine: string | null;
  identity: string | null;
  identities: string[];
  namespace: string | null;
  trace_id: string | null;
  decision: string | null;
  rule: string | null;
  database: string | null;
  verbs: string[];
  paths: string[];
  event: unknown;
  line_text: string;
}

export async function verifyPostgresAudit(options: VerifyPostgresOptions): Promise<PgVerification> {
  const table = auditTable(options.table);
  const { pool, target } = openPgPool({ connectionString: options.connectionString, schema: table.schema ?? 'public', max: 1, applicationName: 'meshgate-audit-verify', statementTimeoutMs: 60_000 });
  try {
    const present = await pool.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [table.sql]);
    if (present.rows[0]?.present !== true) throw Object.assign(new Error(`no table ${table.name}`), { code: 'ENOTABLE' });
    const replicas =
      options.replicas !== undefined && options.replicas.length > 0
        ? [...options.replicas]
        : (await pool.query<{ replica: string }>(`SELECT DISTINCT replica FROM ${table.sql} ORDER BY replica`)).rows.map((r) => r.replica);
    const findings: PgFinding[] = [];
    const notes: string[] = [];
    const chains: ReplicaChain[] = [];
    for (const replica of replicas) {
      const chain = new ChainCheck(replica);
      let after = 0;
      for (;;) {
        const { rows } = await pool.query<Row>(
          `SELECT seq, file, line, prev, hash, ts, type, engine, identity, identities, namespace, trace_id, decision, rule, database, verbs, paths, event, line_text
           FROM ${table.sql} WHERE replica = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
          [replica, after, options.pageRows ?? 5_000],
        );
        for (const row of rows) chain.check(row);
        if (rows.length === 0) break;
        after = Number(rows.at(-1)!.seq);
      }
      if (chain.rows === 0) {
        notes.push(`replica ${replica} has no rows in ${table.name}`);
        continue;
      }
      findings.push(...chain.findings);
      if (chain.firstSeq > 1) notes.push(`replica ${replica}'s rows begin at seq ${chain.firstSeq}: its earlier lines were not exported (gone from its log when the export began), or its first rows were deleted`);
      chains.push({ replica, rows: chain.rows, firstSeq: chain.firstSeq, lastSeq: chain.lastSeq, lastHash: chain.lastHash, ok: chain.findings.length === 0 });
    }
    notes.push("rows cut from the end of a replica's chain cannot show here: compare each replica's last hash with `meshgate audit verify` of its file, or its anchor");
    return { ok: findings.length === 0, table: table.name, replicas: chains, findings, notes };
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOTABLE') throw error;
    throw storeError(target, error);
  } finally {
    await pool.end().catch(() => undefined);
  }
}

class ChainCheck {
  readonly findings: PgFinding[] = [];
  rows = 0;
  firstSeq = 0;
  lastSeq = 0;
  lastHash = GENESIS_HASH;
  #expectedSeq: number | null = null;
  #prevHash: string | null = null;

  constructor(private readonly replica: string) {}

  check(row: Row): void {
    const seq = Number(row.seq);
    if (this.rows++ === 0) this.firstSeq = seq;
    const found = (kind: PgFindingKind, message: string) => this.findings.push({ kind, replica: this.replica, seq, file: row.file, line: row.line, message });
    if (this.#expectedSeq !== null && seq > this.#expectedSeq) {
      const gap = seq - this.#expectedSeq;
      found('missing', `${gap === 1 ? `the row of seq ${this.#expectedSeq} is` : `the rows of seq ${this.#expectedSeq} to ${seq - 1} are`} missing before this one (deleted)`);
      this.#prevHash = null;
    }
    const opened = openLine(Buffer.from(row.line_text, 'utf8'));
    if ('problem' in opened) {
      found(opened.problem.includes('line edited') ? 'edited' : 'broken', `its line: ${opened.problem}`);
      this.#expectedSeq = seq + 1;
      this.#prevHash = null;
      return;
    }
    const line = opened.line;
    if (line.seq !== seq) {
      found('reordered', `its line is seq ${line.seq}, not ${seq}: lines moved between rows`);
    } else if (this.#prevHash !== null && line.prev !== this.#prevHash) {
      found('broken', "its line does not continue the chain (prev is not the previous row's hash)");
    } else if (row.prev !== line.prev || row.hash !== line.hash) {
      found('altered', 'its prev or hash column differs from its line');
    } else {
      const differs = columnsDiffer(row, columnsOf(line.record));
      const jsonb = jsonbTextOf(row.line_text, line.record);
      const event = jsonb === null ? line.record : (JSON.parse(jsonb) as unknown);
      if (differs.length > 0) found('altered', `its ${differs.join(', ')} column${differs.length === 1 ? ' differs' : 's differ'} from its line: what queries read was changed`);
      else if (!isDeepStrictEqual(row.event, event)) found('altered', 'its event (jsonb) differs from its line: what queries read was changed');
    }
    this.#expectedSeq = seq + 1;
    this.#prevHash = line.hash;
    this.lastSeq = seq;
    this.lastHash = line.hash;
  }
}

function columnsDiffer(row: Row, want: RowColumns): string[] {
  const pairs: [string, unknown, unknown][] = [
    ['ts', row.ts.getTime(), Date.parse(want.ts)],
    ['type', row.type, want.type],
    ['engine', row.engine, want.engine],
    ['identity', row.identity, want.identity],
    ['identities', row.identities, want.identities],
    ['namespace', row.namespace, want.namespace],
    ['trace_id', row.trace_id, want.traceId],
    ['decision', row.decision, want.decision],
    ['rule', row.rule, want.rule],
    ['database', row.database, want.database],
    ['verbs', row.verbs, want.verbs],
    ['paths', row.paths, want.paths],
  ];
  return pairs.filter(([, a, b]) => !isDeepStrictEqual(a, b)).map(([name]) => name);
}
