export type {
  AuditError,
  AuditEvent,
  AuditIdentity,
  AuditSink,
  ConnectionEvent,
  SessionEndEvent,
  StatementEvent,
} from './types.ts';
export { openJsonlAuditSink } from './jsonl-sink.ts';
export type { AuditFileHandle, JsonlAuditSink, JsonlAuditSinkOptions } from './jsonl-sink.ts';
export { verifyAuditFile } from './verify.ts';
export type { AuditVerification } from './verify.ts';
export {
  extractTraceparent,
  formatTraceparent,
  newSpanId,
  newTraceId,
  parseTraceparent,
  sqlcommenterComment,
  tagStatement,
} from './trace.ts';
export type { TraceParent } from './trace.ts';
export { statementVerb } from './classify.ts';
export type { ServerFlavor } from './classify.ts';
