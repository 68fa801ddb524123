/**
 * Audit: the recorder engines report facts to (the only place events are built), the event
 * model, the hash-chained JSONL sink, verify, and W3C trace context.
 */
export {
  AuditRecorder,
  REPORTED_FACTS,
  SessionRecorder,
  type AlertFacts,
  type ConnectionFacts,
  type CredentialFacts,
  type LoginTiming,
  type PeerAddress,
  type PolicyChangeFacts,
  type PublishedEvent,
  type ReportedFacts,
  type RpcFacts,
  type StatementFacts,
} from './recorder.ts';
export type {
  AlertEvent,
  AuditError,
  AuditEvent,
  AuditIdentity,
  AuditSink,
  ConnectionEvent,
  CredentialEvent,
  DryRunRecord,
  Outcome,
  PolicyEvent,
  AuditParameter,
  PreparedStatementFacts,
  RpcEvent,
  SessionEndEvent,
  StatementEvent,
} from './types.ts';
export { AUDIT_EVENT_TYPES } from './types.ts';
export { openJsonlAuditSink } from './jsonl-sink.ts';
export type { AuditFileHandle, AuditFileSwitch, ChainHead, JsonlAuditSink, JsonlAuditSinkOptions } from './jsonl-sink.ts';
export { verifyAuditFile } from './verify.ts';
export type { AuditVerification } from './verify.ts';
export { verifyAuditLog } from './verify-log.ts';
export type { AuditLogVerification, FindingKind, LogFinding, VerifyLogOptions } from './verify-log.ts';
export { DEFAULT_CHECKPOINT_EVERY, openAuditSeal, type AuditSeal, type AuditSealOptions } from './seal.ts';
export { generateSigningKey, loadPublicKey, loadSigningKey, publicKeyPathOf, type AuditSigner, type AuditVerifier } from './signing-key.ts';
export { linesBackward } from './lines.ts';
export { GENESIS_HASH, openLine, type ChainedLine } from './chain.ts';
export { FILE_HEADER_TYPE, fileStartOf, listLogFiles, logLayout, type LogFile, type LogLayout } from './log-files.ts';
export { identitiesOf, summarize } from './summary.ts';
export { formatTraceparent, newSpanId, newTraceId, parseTraceparent } from './trace-context.ts';
export type { TraceParent } from './trace-context.ts';
export {
  compileFilter,
  DECISIONS,
  DIGEST_COLUMNS,
  digestCells,
  digestEvents,
  ENGINES,
  EVENT_COLUMNS,
  eventCells,
  openJsonlEventSource,
  OUTCOMES,
  queryEvents,
  splitRecordedPath,
  sqlFingerprint,
  TableWriter,
  type AuditEventSource,
  type DigestRow,
  type EventFilter,
  type QueryFilterInput,
  type SourcedEvent,
} from './query/index.ts';
