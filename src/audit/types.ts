/**
 * The audit event model. One ConnectionEvent when a session is decided (allowed or refused),
 * one StatementEvent per client command that reached policy, one SessionEndEvent when it
 * closes. Events carry no secrets: no passwords, no keys, no auth plugin data.
 */

export interface AuditIdentity {
  readonly spiffeId: string;
  readonly principal: string;
  readonly trustDomain: string;
  readonly namespace: string | null;
  readonly serviceAccount: string | null;
  readonly authMethod: string;
}

export interface AuditError {
  /** MG_* code for meshgate's own refusals, or the upstream's numeric error code. */
  readonly code: string | number;
  readonly message: string;
  readonly sqlState?: string;
}

interface EventBase {
  /** ISO-8601 with milliseconds, UTC. */
  readonly time: string;
  readonly sessionId: string;
  readonly engine: 'mysql' | 'firestore';
}

export interface ConnectionEvent extends EventBase {
  readonly type: 'connection';
  readonly peer: { readonly address: string; readonly port: number };
  readonly tls: { readonly protocol: string | null; readonly cipher: string | null; readonly clientCertSerial: string | null } | null;
  readonly identity: AuditIdentity | null;
  /** The MySQL user name the client sent; informational only, never used for auth. */
  readonly clientUser: string | null;
  readonly database: string | null;
  readonly decision: 'allow' | 'deny';
  readonly rule: string | null;
  readonly reason: string;
  readonly upstreamRole: string | null;
  readonly upstreamConnectionId: number | null;
  readonly error: AuditError | null;
}

export interface StatementEvent extends EventBase {
  readonly type: 'statement';
  readonly identity: AuditIdentity;
  /** W3C trace id (32 hex) from a sqlcommenter traceparent, or a fresh one. */
  readonly traceId: string;
  /** The protocol command: query, prepare, execute, fetch (rows read through a cursor, under its execute's trace id), init_db, reset_connection, ... */
  readonly command: string;
  /** First SQL keyword, upper-case (SELECT, INSERT, ...), or null for non-SQL commands. */
  readonly verb: string | null;
  /**
   * The verb of every statement in the text (several with multi-statements), in order; null
   * where one cannot be told. Empty for non-SQL commands. This and the three fields below are
   * absent from events written before meshgate recorded them.
   */
  readonly verbs?: readonly (string | null)[];
  /** The statement text as the client sent it (without meshgate's own tag), its first audit.statementBytes bytes, credentials redacted. */
  readonly statement: string | null;
  /** `statement` is a prefix: the client's text was longer. */
  readonly truncated?: boolean;
  /** The whole statement's length in bytes (SQL commands only). */
  readonly statementBytes?: number | null;
  /** SHA-256 (hex) of the whole statement's bytes; null for non-SQL commands and texts that may carry a credential. */
  readonly statementSha256?: string | null;
  readonly database: string | null;
  readonly decision: 'allow' | 'deny';
  readonly rule: string | null;
  readonly upstreamRole: string | null;
  readonly upstreamConnectionId: number | null;
  readonly rowsReturned: number;
  readonly rowsAffected: number;
  readonly durationUs: number;
  readonly error: AuditError | null;
}

export interface SessionEndEvent extends EventBase {
  readonly type: 'session_end';
  readonly identity: AuditIdentity | null;
  readonly statements: number;
  readonly bytesFromClient: number;
  readonly bytesFromUpstream: number;
  readonly durationMs: number;
  readonly reason: string;
}

/**
 * One event per gRPC/HTTP call, decided or refused. `xfcc` records what happened to an
 * `x-forwarded-client-cert` header: believed from a trusted hop, or stripped unread.
 */
export interface RpcEvent extends EventBase {
  readonly type: 'rpc';
  readonly peer: { readonly address: string; readonly port: number };
  readonly identity: AuditIdentity | null;
  readonly xfcc: { readonly stripped: boolean; readonly reason: string } | null;
  /** The gRPC method, e.g. google.firestore.v1.Firestore/GetDocument. */
  readonly method: string;
  /** The operation class policy judged (read, write, admin), when it got that far. */
  readonly operation: string | null;
  /** Every resource path the call touched, in request order. */
  readonly paths: readonly string[];
  readonly decision: 'allow' | 'deny';
  readonly rule: string | null;
  readonly reason: string;
  readonly traceId: string;
  /** The gRPC status the caller received. */
  readonly status: number;
  readonly documents: number;
  readonly durationUs: number;
  readonly error: AuditError | null;
}

export type AuditEvent = ConnectionEvent | StatementEvent | SessionEndEvent | RpcEvent;

/** Every event `type` meshgate writes, for tools that filter by it (`meshgate audit tail --type`). */
export const AUDIT_EVENT_TYPES = ['connection', 'statement', 'session_end', 'rpc'] as const satisfies readonly AuditEvent['type'][];
// A new event type that is not added above fails to compile here, so the list cannot fall behind.
const listsEveryType: Exclude<AuditEvent['type'], (typeof AUDIT_EVENT_TYPES)[number]> extends never ? true : never = true;
void listsEveryType;

/**
 * Where events go. `record` never blocks and never throws; when the sink falls behind,
 * `backlogged` turns true and sessions stop reading from their clients until 'drain'.
 */
export interface AuditSink {
  record(event: AuditEvent): void;
  readonly backlogged: boolean;
  /**
   * Calls `listener` once, when the backlog falls back below half its limit; right away (on a
   * microtask) when not backlogged now, so a session that raced the drain never waits forever.
   */
  onDrain(listener: () => void): void;
  /** Flushes everything recorded so far. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
