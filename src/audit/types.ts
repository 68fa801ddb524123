/**
 * The audit event model. One ConnectionEvent when a session is decided (allowed or refused),
 * one StatementEvent per client command that reached policy, one SessionEndEvent when it
 * closes. Events carry no secrets: no passwords, no keys, no auth plugin data.
 */
import type { MeshgateError } from '../errors/index.ts';

export interface AuditIdentity {
  readonly spiffeId: string;
  readonly principal: string;
  readonly trustDomain: string;
  readonly namespace: string | null;
  readonly serviceAccount: string | null;
  readonly authMethod: string;
}

/**
 * What became of an operation meshgate let through: `completed` (the upstream answered with
 * success), `failed` (it answered with an error, or meshgate refused it and nothing was sent),
 * `unknown` (sent upstream, and its answer was never seen: it may or may not have taken effect;
 * the event's error says why).
 */
export type Outcome = 'completed' | 'failed' | 'unknown';

export interface AuditError {
  /** MG_* code for meshgate's own refusals, or the upstream's numeric error code. */
  readonly code: string | number;
  readonly message: string;
  readonly sqlState?: string;
}

/** What a dry-run rule (`action: AUDIT`) would have decided, recorded beside what was enforced. */
export interface DryRunRecord {
  readonly rule: string | null;
  readonly decision: 'allow' | 'deny';
  readonly reason: string;
}

/**
 * On events policy decided: the version of the policy that decided (its digest or git
 * commit), and the dry run that matched, if any. Absent from events no policy judged, and
 * from events written before meshgate recorded them.
 */
interface PolicyMarks {
  readonly policyVersion?: string;
  readonly dryRun?: DryRunRecord;
}

interface EventBase {
  /** ISO-8601 with milliseconds, UTC. */
  readonly time: string;
  readonly sessionId: string;
  readonly engine: 'mysql' | 'firestore';
}

export interface ConnectionEvent extends EventBase, PolicyMarks {
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
  /**
   * A summary of refusals not written one by one (a flood from one peer): `count` more like
   * this one, from this peer address with this code, between `since` and `time`.
   */
  readonly repeats?: { readonly count: number; readonly since: string };
}

export interface StatementEvent extends EventBase, PolicyMarks {
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
  readonly outcome: Outcome;
  readonly error: AuditError | null;
  /** Prepared-statement commands only (prepare, execute, fetch): the statement id and what the command carried. */
  readonly prepared?: PreparedStatementFacts;
  /** How long the statement waited in its service class's queue before it went upstream (ms); absent when it did not wait. */
  readonly throttleWaitMs?: number;
}

/**
 * What a prepared-statement command carried, beyond the statement's text (which every
 * event of the statement repeats).
 */
export interface PreparedStatementFacts {
  /** The id the client named (-1: the last one prepared) or MariaDB gave; null for a prepare never answered. */
  readonly statementId: number | null;
  /** prepare: how many parameters the statement takes. */
  readonly parameterCount?: number;
  /** execute: each parameter as the deciding rule's `auditParameters` says; absent with `none`. */
  readonly parameters?: readonly AuditParameter[];
  /** execute: why its parameters could not be read (MariaDB judged the execute itself). */
  readonly parametersUnread?: string;
  /** execute: what COM_STMT_SEND_LONG_DATA sent for it beforehand. */
  readonly longData?: { readonly chunks: number; readonly bytes: number };
  /** fetch: which fetch of its execute's cursor this is, from 1. */
  readonly fetch?: number;
}

/** One parameter of an execute. */
export interface AuditParameter {
  /** MariaDB's name of its field type (LONGLONG, VAR_STRING, …), ` UNSIGNED` where flagged. */
  readonly type: string;
  /** `values` only: numbers as JSON numbers where exact, everything else as text (binary as 0x…). */
  readonly value?: string | number | null;
  /** `value` is the first audit.parameterBytes bytes of a longer one. */
  readonly truncated?: true;
  /** The length of a string or binary value, in bytes. */
  readonly bytes?: number;
  /** Sent beforehand with COM_STMT_SEND_LONG_DATA: not in the execute, so not in the event. */
  readonly longData?: true;
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
export interface RpcEvent extends EventBase, PolicyMarks {
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
  readonly outcome: Outcome;
  readonly error: AuditError | null;
  /** How long the call waited in its service class's queue (ms); absent when it did not wait. */
  readonly throttleWaitMs?: number;
}

/**
 * One event per issue, revoke or rotation of a credential meshgate makes, refusals included:
 * direct credentials handed to a caller, leases an admin revokes or the sweep drops, and
 * meshgate's own admin password. Names the account, never a password.
 */
export interface CredentialEvent extends EventBase, PolicyMarks {
  readonly type: 'credential';
  readonly action: 'issue' | 'revoke' | 'rotate';
  /** refused: meshgate said no (policy, limit, not an admin); failed: it tried and could not. */
  readonly outcome: 'completed' | 'refused' | 'failed';
  /** direct: handed to a caller; session: meshgate's own for sessions; admin: meshgate's admin account; null: unknown (a refused revoke). */
  readonly credential: 'direct' | 'session' | 'admin' | null;
  readonly peer: { readonly address: string; readonly port: number } | null;
  /** Who asked; null for meshgate itself (the sweep, a scheduled rotation) or a caller it could not identify. */
  readonly identity: AuditIdentity | null;
  readonly decision: 'allow' | 'deny';
  /** The policy rule that allowed an issue; `admin.principals` for an admin's revoke or rotation. */
  readonly rule: string | null;
  readonly reason: string;
  /** Whose credential: the identity a lease is (or would be) issued to. */
  readonly principal: string | null;
  readonly leaseId: string | null;
  /** The MariaDB user name. */
  readonly account: string | null;
  readonly role: string | null;
  readonly database: string | null;
  readonly ttlSeconds: number | null;
  readonly expiresAt: string | null;
  readonly error: AuditError | null;
}

/**
 * `audit.durability: strict` only: what is about to go upstream, durably on disk before it
 * goes. The operation's own event (statement, rpc) still follows with its outcome, under the
 * same traceId; an intent with no such event after it is an operation whose outcome the
 * crash took with it.
 */
export interface IntentEvent extends EventBase {
  readonly type: 'intent';
  readonly identity: AuditIdentity;
  readonly traceId: string;
  /** MySQL: the protocol command (query, execute, …); Firestore: the gRPC method. */
  readonly command: string;
  /** MySQL: the statement text, secrets redacted; null for Firestore and non-SQL commands. */
  readonly statement: string | null;
  /** Firestore: the resource paths this message touches; empty for MySQL. */
  readonly paths: readonly string[];
}

/**
 * Written by the sink itself, in the chain: what a crash or an audit outage cost. `torn_tail`:
 * the file ended in a partial line at start; those bytes were set aside (`setAside`), not
 * dropped. `unavailable`: the audit could not take events for a while; operations were
 * refused meanwhile, and `unrecorded` counts refusals not written one by one (each would
 * have needed the disk that was missing).
 */
export interface RecoveredEvent {
  readonly type: 'recovered';
  readonly time: string;
  readonly engine: null;
  readonly sessionId: null;
  readonly cause: 'torn_tail' | 'unavailable';
  readonly detail: string;
  readonly torn?: { readonly bytes: number; readonly sha256: string; readonly setAside: string; readonly nextSeq: number };
  readonly outage?: { readonly since: string; readonly until: string; readonly error: string; readonly unrecorded: number };
}

/**
 * Something a security team must look at now. `lease_compromised`: MariaDB refused a session
 * lease's password because its account was changed behind meshgate's back (a `SET PASSWORD`,
 * a changed TLS requirement); meshgate revoked it at once. `sessionId` is the session whose
 * login found it; `identity` is whom the lease was for.
 */
export interface AlertEvent extends EventBase {
  readonly type: 'alert';
  readonly alert: 'lease_compromised';
  readonly identity: AuditIdentity | null;
  /** `account` is 'user@host' as MariaDB names it. */
  readonly lease: { readonly id: string; readonly role: string; readonly account: string };
  /** What was found, e.g. "its password was changed outside meshgate". */
  readonly reason: string;
  /** What meshgate did, e.g. "account dropped, 2 connections killed". */
  readonly action: string;
}

/**
 * A policy version put in force, or refused: at start, on a reload (file change, SIGHUP, the
 * admin API, a git commit), with what it replaced. `sessionsEnded` counts the sessions a
 * re-evaluation ended because the new version no longer allowed them.
 */
export interface PolicyEvent {
  readonly type: 'policy';
  readonly time: string;
  readonly engine: null;
  readonly sessionId: null;
  readonly action: 'load' | 'reload';
  readonly outcome: 'completed' | 'refused';
  /** What asked for it: start, watch, signal, admin, git. */
  readonly trigger: string;
  /** The admin's identity for an admin API reload. */
  readonly identity: AuditIdentity | null;
  readonly policyVersion: string | null;
  readonly previousVersion: string | null;
  readonly rules: number | null;
  /** Where it came from: the directory, or the repository and commit. */
  readonly source: string;
  readonly sessionsEnded: number;
  readonly error: AuditError | null;
}

export type AuditEvent = ConnectionEvent | StatementEvent | SessionEndEvent | RpcEvent | CredentialEvent | IntentEvent | RecoveredEvent | AlertEvent | PolicyEvent;

/** strict: an operation goes upstream only once its intent is fdatasync'd; buffered: a bounded queue. */
export type AuditDurability = 'strict' | 'buffered';

/** Every event `type` meshgate writes, for tools that filter by it (`meshgate audit tail --type`). */
export const AUDIT_EVENT_TYPES = ['connection', 'statement', 'session_end', 'rpc', 'credential', 'intent', 'recovered', 'alert', 'policy'] as const satisfies readonly AuditEvent['type'][];
// A new event type that is not added above fails to compile here, so the list cannot fall behind.
const listsEveryType: Exclude<AuditEvent['type'], (typeof AUDIT_EVENT_TYPES)[number]> extends never ? true : never = true;
void listsEveryType;

/**
 * Where events go. `record` never blocks and never throws; when the sink falls behind,
 * `backlogged` turns true and sessions stop reading from their clients until 'drain'.
 * The optional members are the durability contract (docs/audit-durability.md); a sink
 * without them is buffered and always available.
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
  readonly durability?: AuditDurability;
  /** MG_AUDIT_UNAVAILABLE while new operations must be refused (disk failing, backlog past its wait); else null. */
  readonly refusal?: MeshgateError | null;
  /**
   * Calls back once every event recorded so far is fdatasync'd, with null; with the refusal
   * instead, at once, when the sink cannot write (the events stay queued and are written later).
   */
  whenDurable?(callback: (error: MeshgateError | null) => void): void;
  /** Recorded events not yet written (metrics: the audit queue). */
  readonly pending?: number;
  /** Seconds sessions were held back by backlogs in all (metrics). */
  readonly backPressureSeconds?: number;
}
