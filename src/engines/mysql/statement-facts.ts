/**
 * What the audit is told of one command: its statement event's facts, from what the command
 * stages know of it (text, record, trace) and how it ended — MariaDB's answer, meshgate's own
 * refusal, or no answer seen at all.
 */
import type { StatementFacts, TraceParent } from '../../audit/index.ts';
import type { MeshgateError } from '../../errors/index.ts';
import type { ResponseOutcome } from './codec/response-tracker.ts';
import type { PreparedFacts } from './prepared.ts';
import { redactSecrets } from './sql/index.ts';
import type { StatementRecord } from './statement-text.ts';

export interface CommandEnding {
  readonly command: string;
  readonly text: string | null;
  readonly verb: string | null;
  readonly traceId: string;
  readonly decision: 'allow' | 'deny';
  /** MariaDB's answer; null for meshgate's own refusals; 'unknown' when the answer was never seen. */
  readonly outcome: ResponseOutcome | 'unknown' | null;
  readonly durationUs: number;
  readonly refusal: MeshgateError | null;
  readonly sql: StatementRecord | null;
  readonly parent?: TraceParent | null;
  readonly prepared?: PreparedFacts | null;
  readonly spanId?: string | null;
  readonly throttleWaitMs?: number;
}

/** The facts of `c`, run in `database` by a session whose spans may show `traceQueryText`. */
export function statementFacts(c: CommandEnding, database: string | null, traceQueryText: StatementFacts['traceQueryText']): StatementFacts {
  const { sql, outcome, refusal } = c;
  const answer = outcome === 'unknown' ? null : outcome;
  const upstreamError = answer?.error ?? null;
  return {
    command: c.command,
    verb: sql !== null && sql.verbs.length > 0 ? sql.verbs[0]! : c.verb,
    verbs: sql?.verbs ?? [],
    statement: sql?.text ?? (c.text === null ? null : redactSecrets(c.text)),
    truncated: sql?.truncated ?? false,
    statementBytes: sql?.bytes ?? null,
    statementSha256: sql?.sha256 ?? null,
    traceId: c.traceId,
    parent: c.parent ?? null,
    database,
    decision: c.decision,
    rowsReturned: answer?.rowsReturned ?? 0,
    rowsAffected: answer?.rowsAffected ?? 0,
    durationUs: c.durationUs,
    outcome: outcome === 'unknown' ? 'unknown' : refusal !== null || upstreamError !== null ? 'failed' : 'completed',
    error: refusal ?? (upstreamError === null ? null : { code: upstreamError.code, message: upstreamError.message, sqlState: upstreamError.sqlState }),
    prepared: c.prepared ?? null,
    traceQueryText,
    spanId: c.spanId ?? null,
    throttleWaitMs: c.throttleWaitMs ?? 0,
  };
}
