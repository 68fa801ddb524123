/**
 * A session's prepared statements, as the audit needs them: the text each id stands for, its
 * parameter bindings, the long data sent for its next execute, and the trace and fetch count
 * of the cursor its last execute opened.
 *
 * Commands go upstream in order and answers come back in order, and state follows each
 * where MariaDB's own does: a statement id exists once its COM_STMT_PREPARE_OK is read; long
 * data belongs to the next execute sent; an execute's parameters are read when its answer
 * comes, by then the id's parameter count is known even when the execute was pipelined
 * behind its prepare (statement id -1), and bindings inherited from an earlier execute were
 * read in that execute's turn.
 */
import { LAST_PREPARED_STATEMENT_ID } from './codec/constants.ts';
import type { PreparedStatementFacts } from '../../audit/index.ts';
import type { ParameterAudit } from '../../policy/index.ts';
import { readExecuteParameters, type ParameterType } from './codec/execute-params.ts';
import type { StatementRecord } from './statement-text.ts';

/** What a prepared command's audit event says of the statement beyond its text. */
export type PreparedFacts = PreparedStatementFacts;

export interface PreparedStatement {
  readonly text: string;
  readonly record: () => StatementRecord;
}

interface Entry {
  readonly text: string;
  record: () => StatementRecord;
  parameterCount: number | null;
  types: readonly ParameterType[] | null;
  longData: LongData | null;
}

interface LongData {
  readonly parameters: Set<number>;
  chunks: number;
  bytes: number;
}

export interface ParameterOptions {
  readonly mode: ParameterAudit;
  readonly maxValueBytes: number;
}

export class PreparedStatements {
  private readonly byId = new Map<number, Entry | null>();
  /** The statement of the latest COM_STMT_PREPARE sent: what id -1 names once it is prepared. */
  private last: Entry | null = null;
  /** Statement id → trace id and fetch count of the cursor its latest execute opened. */
  private readonly cursors = new Map<number, { readonly traceId: string; fetches: number }>();

  constructor(private readonly options: ParameterOptions) {}

  /** The statement an id names (-1: the last prepared), or null when meshgate does not know it. */
  get(id: number): PreparedStatement | null {
    return this.entry(id);
  }

  /**
   * COM_STMT_PREPARE sent: from now on id -1 names this statement. Returns what to do with
   * its answer: an OK makes the id exist, with its parameter count.
   */
  preparing(statement: PreparedStatement | null): (answer: { readonly statementId: number | null; readonly parameters: number | null } | null) => PreparedFacts {
    this.cursors.delete(LAST_PREPARED_STATEMENT_ID);
    const entry: Entry | null = statement === null ? null : { ...statement, parameterCount: null, types: null, longData: null };
    this.last = entry;
    return (answer) => {
      if (answer === null || answer.statementId === null) return { statementId: null };
      if (entry !== null) {
        entry.parameterCount = answer.parameters;
        // Made now, so a prepared statement does not keep a long payload alive.
        const record = entry.record();
        entry.record = () => record;
      }
      this.byId.set(answer.statementId, entry);
      return answer.parameters === null ? { statementId: answer.statementId } : { statementId: answer.statementId, parameterCount: answer.parameters };
    };
  }

  /** COM_STMT_SEND_LONG_DATA sent: part of a parameter's value for the next execute. */
  longData(id: number, parameter: number, bytes: number): void {
    const entry = this.entry(id);
    if (entry === null) return;
    const sent = (entry.longData ??= { parameters: new Set(), chunks: 0, bytes: 0 });
    sent.parameters.add(parameter);
    sent.chunks++;
    sent.bytes += bytes;
  }

  /** COM_STMT_RESET sent: the long data sent so far is gone. */
  reset(id: number): void {
    const entry = this.entry(id);
    if (entry !== null) entry.longData = null;
  }

  /**
   * COM_STMT_EXECUTE sent, opening a cursor under `traceId` if it asks for one. Returns what
   * to read when its answer comes (the parameters need the statement's parameter count).
   */
  executing(id: number, payload: Buffer, traceId: string): () => PreparedFacts {
    this.cursors.set(id, { traceId, fetches: 0 });
    const entry = this.entry(id);
    const longData = entry?.longData ?? null;
    if (entry !== null) entry.longData = null;
    const sentLongData = longData === null ? {} : { longData: { chunks: longData.chunks, bytes: longData.bytes } };
    const mode = this.options.mode;
    if (mode === 'none' || entry === null) return () => ({ statementId: auditId(id), ...sentLongData });
    return () => {
      if (entry.parameterCount === null) return { statementId: auditId(id), ...sentLongData, parametersUnread: 'the statement was never prepared' };
      const read = readExecuteParameters(payload, {
        parameterCount: entry.parameterCount,
        previousTypes: entry.types,
        longData: longData?.parameters ?? new Set(),
        mode,
        maxValueBytes: this.options.maxValueBytes,
      });
      if ('problem' in read) return { statementId: auditId(id), ...sentLongData, parametersUnread: read.problem };
      entry.types = read.types;
      return { statementId: auditId(id), parameters: read.parameters, ...sentLongData };
    };
  }

  /** COM_STMT_FETCH sent: the trace of the execute whose cursor it reads, and its number. */
  fetching(id: number): { readonly traceId: string; readonly facts: PreparedFacts } | null {
    const cursor = this.cursors.get(id);
    if (cursor === undefined) return null;
    cursor.fetches++;
    return { traceId: cursor.traceId, facts: { statementId: auditId(id), fetch: cursor.fetches } };
  }

  /** COM_STMT_CLOSE sent. */
  close(id: number): void {
    this.byId.delete(id);
    this.cursors.delete(id);
  }

  /** COM_RESET_CONNECTION sent: cursors go at once. */
  resetting(): void {
    this.cursors.clear();
  }

  /** COM_RESET_CONNECTION answered OK: MariaDB dropped every prepared statement. */
  cleared(): void {
    this.byId.clear();
  }

  private entry(id: number): Entry | null {
    return id === LAST_PREPARED_STATEMENT_ID ? this.last : (this.byId.get(id) ?? null);
  }
}

/** The id as the audit writes it: the protocol's 0xFFFFFFFF ("the last prepared") as -1, as MariaDB documents it. */
export function auditId(id: number): number {
  return id === LAST_PREPARED_STATEMENT_ID ? -1 : id;
}
