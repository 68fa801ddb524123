/**
 * A statement event's JSON text, built from its fields and its session's parts serialized
 * once, instead of walking the whole event with JSON.stringify: statement events are the
 * audit's hot path (one per query), and most of each is the same for the whole session
 * (who, which rule, which role). The text is exactly what JSON.stringify(event) gives — same
 * keys, same order, same escapes — so the file, its hashes and verify do not change; a
 * property test holds the two to that.
 */
import type { StatementEvent } from './types.ts';

/** The session's parts of its statement events, serialized once (again when a reload re-decides it). */
export interface StatementJsonParts {
  /** `,"sessionId":…,"engine":…,"identity":{…}` */
  readonly session: string;
  /** The policy marks (version, dry run), `,"upstreamRole":…,"upstreamConnectionId":…` */
  readonly grant: string;
}

/** Under this key a statement event carries its session's parts; a symbol, so never itself serialized. */
export const STATEMENT_JSON = Symbol('meshgate.statementJson');

export function statementJsonParts(
  session: { readonly sessionId: string; readonly engine: string; readonly identity: object },
  policy: object,
  upstream: { readonly upstreamRole: string | null; readonly upstreamConnectionId: number | null },
): StatementJsonParts {
  const policyJson = JSON.stringify(policy);
  const marks = policyJson === '{}' ? '' : ',' + policyJson.slice(1, -1);
  return {
    session: `,"sessionId":${JSON.stringify(session.sessionId)},"engine":${JSON.stringify(session.engine)},"identity":${JSON.stringify(session.identity)}`,
    grant: `${marks},"upstreamRole":${text(upstream.upstreamRole)},"upstreamConnectionId":${number(upstream.upstreamConnectionId)}`,
  };
}

/** JSON.stringify(event) without its closing brace, for an event made by SessionRecorder.statement. */
export function openStatementJson(e: StatementEvent, parts: StatementJsonParts): string {
  return (
    `{"type":"statement","time":${JSON.stringify(e.time)}${parts.session}` +
    `,"traceId":${JSON.stringify(e.traceId)},"command":${JSON.stringify(e.command)},"verb":${text(e.verb)}` +
    `,"verbs":${verbs(e.verbs!)},"statement":${text(e.statement)},"truncated":${e.truncated!}` +
    `,"statementBytes":${number(e.statementBytes!)},"statementSha256":${text(e.statementSha256!)},"database":${text(e.database)}` +
    `,"decision":${JSON.stringify(e.decision)},"rule":${text(e.rule)}${parts.grant}` +
    `,"rowsReturned":${number(e.rowsReturned)},"rowsAffected":${number(e.rowsAffected)},"durationUs":${number(e.durationUs)}` +
    `,"outcome":${JSON.stringify(e.outcome)},"error":${e.error === null ? 'null' : JSON.stringify(e.error)}` +
    (e.prepared === undefined ? '' : `,"prepared":${JSON.stringify(e.prepared)}`) +
    (e.throttleWaitMs === undefined ? '' : `,"throttleWaitMs":${number(e.throttleWaitMs)}`)
  );
}

function text(value: string | null): string {
  return value === null ? 'null' : JSON.stringify(value);
}

/** As JSON.stringify writes a number: NaN and the infinities become null. */
function number(value: number | null): string {
  return value === null || !Number.isFinite(value) ? 'null' : String(value);
}

function verbs(list: readonly (string | null)[]): string {
  if (list.length === 0) return '[]';
  if (list.length === 1) return `[${text(list[0]!)}]`;
  return JSON.stringify(list);
}
