/**
 * What engines report to the recorder: plain facts about what happened, never events (the
 * recorder alone builds those, in events.ts).
 */
import type { MeshgateError } from '../errors/index.ts';
import type { Identity, TlsPeerFacts, XfccNote } from '../identity/index.ts';
import type { TraceParent } from './trace-context.ts';
import type { AuditEvent, Outcome, PreparedStatementFacts } from './types.ts';

export type Engine = NonNullable<AuditEvent['engine']>;

/**
 * What policy decided beyond allow or deny, for the event: the version of the policy that
 * decided, and what a dry-run rule (`action: AUDIT`) would have decided instead, if one matched.
 */
export interface PolicyFacts {
  readonly policyVersion?: string | null;
  readonly dryRun?: DryRunFacts | null;
}

/** A dry-run rule's would-be decision (PolicyDecision fields the audit keeps). */
export interface DryRunFacts {
  readonly rule: string | null;
  readonly decision: 'allow' | 'deny';
  readonly reason: string;
}

export interface PeerAddress {
  readonly address: string;
  readonly port: number;
}

/** An error from the upstream server itself (MariaDB's code and SQLSTATE). */
export interface UpstreamError {
  readonly code: number;
  readonly message: string;
  readonly sqlState?: string;
}

/**
 * A login's steps, as process.hrtime.bigint() marks, as far as it got; for tracing only. The
 * session accepted the connection at `acceptedAt` (epoch milliseconds).
 */
export interface LoginTiming {
  readonly acceptedAt: number;
  readonly began: bigint;
  readonly identified?: bigint;
  readonly decided?: bigint;
  readonly upstream?: { readonly from: bigint; readonly to: bigint };
}

/**
 * What a subscriber may read under REPORTED_FACTS beyond the event (every fact optional). It is
 * the facts object the engine reported, handed on as it is rather than copied.
 */
export interface ReportedFacts {
  /** The caller's span, from its traceparent; null when meshgate began the trace. */
  readonly parent?: TraceParent | null;
  readonly login?: LoginTiming;
  /** process.hrtime.bigint() when a gRPC caller's identity was known. */
  readonly identifiedAt?: bigint;
  /** What the deciding rule lets spans show of the text or paths; null: the tracing configuration decides. */
  readonly traceQueryText?: 'sanitized' | 'full' | 'none' | null;
  /** The span id meshgate named for the statement in the tag MariaDB saw; its span takes it. */
  readonly spanId?: string | null;
}

export const REPORTED_FACTS: unique symbol = Symbol('meshgate.reportedFacts');

/** An event as published on its channel. */
export type PublishedEvent<E extends AuditEvent = AuditEvent> = E & { readonly [REPORTED_FACTS]?: ReportedFacts };

export interface ConnectionFacts extends PolicyFacts {
  readonly engine: Engine;
  readonly sessionId: string;
  readonly peer: PeerAddress;
  readonly tls: TlsPeerFacts | null;
  readonly identity: Identity | null;
  /** The user name the client sent; informational only. */
  readonly clientUser: string | null;
  readonly database: string | null;
  readonly decision: 'allow' | 'deny';
  readonly rule: string | null;
  readonly reason: string;
  readonly role: string | null;
  readonly upstreamConnectionId: number | null;
  readonly error: MeshgateError | null;
  readonly login?: LoginTiming;
}

export interface SessionStart extends PolicyFacts {
  readonly engine: Engine;
  readonly sessionId: string;
  readonly identity: Identity;
  readonly role: string | null;
  readonly rule: string | null;
  readonly upstreamConnectionId: number | null;
  /** Epoch milliseconds. */
  readonly startedAt: number;
}

export interface StatementFacts {
  /** The protocol command: query, prepare, execute, fetch, init_db, … */
  readonly command: string;
  /** First SQL keyword, upper-case, when the command carries SQL. */
  readonly verb: string | null;
  /** The verb of every statement in the text, in order (null where one cannot be told). */
  readonly verbs?: readonly (string | null)[];
  /** The statement as the client sent it, secrets already redacted (the engine knows its syntax); a prefix when `truncated`. */
  readonly statement: string | null;
  readonly truncated?: boolean;
  /** The whole statement's length in bytes, and its SHA-256 (hex). */
  readonly statementBytes?: number | null;
  readonly statementSha256?: string | null;
  readonly traceId: string;
  /** The caller's span when `traceId` is the caller's (its sqlcommenter traceparent). */
  readonly parent?: TraceParent | null;
  readonly database: string | null;
  readonly decision: 'allow' | 'deny';
  readonly rowsReturned: number;
  readonly rowsAffected: number;
  readonly durationUs: number;
  readonly outcome: Outcome;
  /** meshgate's own refusal, the upstream's error, or why the outcome is unknown. */
  readonly error: MeshgateError | UpstreamError | null;
  readonly prepared?: PreparedStatementFacts | null;
  /** Time spent queued by the throttle (ms), when it waited. */
  readonly throttleWaitMs?: number;
  /** Not recorded: for subscribers (ReportedFacts). */
  readonly traceQueryText?: 'sanitized' | 'full' | 'none' | null;
  readonly spanId?: string | null;
}

export interface SessionEndFacts {
  readonly reason: string;
  readonly bytesFromClient: number;
  readonly bytesFromUpstream: number;
}

export interface RpcFacts extends PolicyFacts {
  readonly engine: Engine;
  readonly sessionId: string;
  readonly peer: PeerAddress;
  readonly identity: Identity | null;
  readonly xfcc: XfccNote | null;
  readonly method: string;
  readonly operation: string | null;
  readonly paths: readonly string[];
  readonly decision: 'allow' | 'deny';
  readonly rule: string | null;
  readonly reason: string;
  readonly traceId: string;
  /** The caller's span when `traceId` is the caller's (its traceparent metadata). */
  readonly parent?: TraceParent | null;
  /** process.hrtime.bigint() when the caller's identity was known. */
  readonly identifiedAt?: bigint;
  /** The status the caller received (gRPC: 0 is OK). */
  readonly status: number;
  /** meshgate's own refusal; otherwise a non-zero status is the upstream's, with its message. */
  readonly error: MeshgateError | null;
  readonly upstreamMessage?: string;
  readonly documents: number;
  /** process.hrtime.bigint() when the call arrived. */
  readonly startedAt: bigint;
  readonly outcome: Outcome;
  /** Time the call spent queued by its service class (ms), when it waited. */
  readonly throttleWaitMs?: number;
  /** Not recorded: for subscribers (ReportedFacts). */
  readonly traceQueryText?: 'sanitized' | 'full' | 'none' | null;
}

export interface AlertFacts {
  readonly engine: Engine;
  readonly sessionId: string;
  readonly alert: 'lease_compromised';
  readonly identity: Identity | null;
  readonly lease: { readonly id: string; readonly role: string; readonly account: string };
  readonly reason: string;
  readonly action: string;
}


/** A policy version put in force or refused (recorder.policyChange). */
export interface PolicyChangeFacts {
  readonly action: 'load' | 'reload';
  readonly trigger: string;
  readonly identity?: Identity | null;
  readonly policyVersion: string | null;
  readonly previousVersion: string | null;
  readonly rules: number | null;
  readonly source: string;
  readonly sessionsEnded?: number;
  /** Why the version was refused (the last good one stays in force); null when it took effect. */
  readonly error: MeshgateError | null;
}
