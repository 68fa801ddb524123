/**
 * The audit recorder: the only place audit events are built. Engines report what happened
 * — a connection decided, a statement answered, a call ended — as plain facts, through
 * lifecycle hooks:
 *
 *   connection(facts)                         MySQL: the login decided (allowed or refused)
 *   refusal(facts)                            a caller refused before anyone knew who it was
 *                                             (TLS, time-outs, garbage): counted past a limit
 *   openSession(start) ─▶ statement(facts)*  ─▶ end(facts)     exactly one end, however it ends
 *   rpc(facts)                                one gRPC call, decided and answered
 *   credential(facts)                         a credential issued, revoked or rotated (or refused)
 *   alert(facts)                              something to look at now (a compromised lease)
 *
 * Every event also goes out on a named diagnostics_channel (`meshgate:<engine>:<type>`,
 * e.g. `meshgate:mysql:statement`, `meshgate:firestore:rpc`), so metrics and tracing can
 * subscribe without touching the data path; publishing costs nothing without subscribers.
 * A published event carries the facts it was built from under REPORTED_FACTS, for what the
 * audit does not keep (the caller's span id, a login's stage timings); a symbol key, so never
 * in the file.
 */
import diagnostics from 'node:diagnostics_channel';
import type { MeshgateError } from '../errors/index.ts';
import type { Identity, TlsPeerFacts, XfccNote } from '../identity/index.ts';
import { auditTime } from './clock.ts';
import type { TraceParent } from './trace-context.ts';
import { credentialEvent, type CredentialFacts } from './credential.ts';
import { auditIdentity } from './identity.ts';
import { DEFAULT_REFUSAL_LIMITS, RefusalLimiter, type RefusalLimits } from './refusals.ts';
import type { AuditDurability, AuditError, AuditEvent, AuditIdentity, AuditSink, ConnectionEvent, Outcome, PreparedStatementFacts, RecoveredEvent, StatementEvent } from './types.ts';

type Engine = NonNullable<AuditEvent['engine']>;
/** What engines report; `recovered` events are the sink's own. */
type EngineEvent = Exclude<AuditEvent, RecoveredEvent>;

export type { CredentialFacts } from './credential.ts';

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

export interface ConnectionFacts {
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

export interface SessionStart {
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

export interface RpcFacts {
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

const channels = new Map<string, diagnostics.Channel>();
function channelOf(engine: Engine, type: EngineEvent['type']): diagnostics.Channel {
  const name = `meshgate:${engine}:${type}`;
  let channel = channels.get(name);
  if (channel === undefined) channels.set(name, (channel = diagnostics.channel(name)));
  return channel;
}

function errorOf(error: MeshgateError | UpstreamError | null): AuditError | null {
  if (error === null) return null;
  if (typeof error.code === 'number') {
    const upstream = error as UpstreamError;
    return upstream.sqlState === undefined ? { code: upstream.code, message: upstream.message } : { code: upstream.code, message: upstream.message, sqlState: upstream.sqlState };
  }
  return { code: error.code, message: error.message };
}

function connectionEvent(f: ConnectionFacts): ConnectionEvent {
  return {
    type: 'connection',
    time: auditTime(),
    sessionId: f.sessionId,
    engine: f.engine,
    peer: { address: f.peer.address, port: f.peer.port },
    tls: f.tls === null ? null : { protocol: f.tls.protocol, cipher: f.tls.cipher, clientCertSerial: f.tls.peerCertificate?.serialNumber ?? null },
    identity: f.identity === null ? null : auditIdentity(f.identity),
    clientUser: f.clientUser,
    database: f.database,
    decision: f.decision,
    rule: f.rule,
    reason: f.reason,
    upstreamRole: f.role,
    upstreamConnectionId: f.upstreamConnectionId,
    error: f.error === null ? null : { code: f.error.code, message: f.error.message },
  };
}

export interface RecorderOptions {
  /** How refusals of unidentified callers are bounded (refusals.ts). */
  readonly refusals?: RefusalLimits;
  readonly now?: () => number;
}

export class AuditRecorder {
  private readonly refusals: RefusalLimiter;

  constructor(
    private readonly sink: AuditSink,
    options: RecorderOptions = {},
  ) {
    this.refusals = new RefusalLimiter((event) => this.emit(event), options.refusals ?? DEFAULT_REFUSAL_LIMITS, options.now);
  }

  /** True while the sink is behind: sessions stop reading from clients until onDrain. */
  get backlogged(): boolean {
    return this.sink.backlogged;
  }

  onDrain(listener: () => void): void {
    this.sink.onDrain(listener);
  }

  /** strict: engines write an intent and wait for it before forwarding (docs/audit-durability.md). */
  get strict(): boolean {
    return this.sink.durability === 'strict';
  }

  get durability(): AuditDurability {
    return this.sink.durability ?? 'buffered';
  }

  /**
   * The MG_AUDIT_UNAVAILABLE error every engine answers a new operation with while the audit
   * cannot take events (disk full or failing, or a backlog held past audit.maxWaitMs); null
   * when operations may go on.
   */
  refusal(): MeshgateError | null {
    return this.sink.refusal ?? null;
  }

  /**
   * Calls back (null) once everything recorded so far is durable: in strict mode after the
   * group commit that holds it, otherwise at once, synchronously. With the refusal instead,
   * when the audit cannot write: the operation waiting must then not go ahead.
   */
  afterDurable(callback: (error: MeshgateError | null) => void): void {
    if (!this.strict || this.sink.whenDurable === undefined) callback(null);
    else this.sink.whenDurable(callback);
  }

  /** afterDurable as a promise that rejects with the refusal (the admin API's form). */
  durable(): Promise<void> {
    return new Promise((resolve, reject) => this.afterDurable((error) => (error === null ? resolve() : reject(error))));
  }

  /** strict mode: what a Firestore message is about to touch, before it is forwarded. */
  rpcIntent(f: { readonly engine: Engine; readonly sessionId: string; readonly identity: Identity; readonly method: string; readonly traceId: string; readonly paths: readonly string[] }): void {
    this.emit({ type: 'intent', time: auditTime(), sessionId: f.sessionId, engine: f.engine, identity: auditIdentity(f.identity), traceId: f.traceId, command: f.method, statement: null, paths: f.paths });
  }

  connection(f: ConnectionFacts): void {
    this.emit(connectionEvent(f), f);
  }

  /**
   * A refusal of a caller with no identity yet: written, or counted into a summary when one
   * address sends more than the limits allow (refusals.ts). True when written now, so the
   * caller logs only what it audits one by one.
   */
  refusedCaller(f: ConnectionFacts): boolean {
    return this.refusals.admit(connectionEvent(f));
  }

  /** Writes the summaries of refusals counted so far (at shutdown, before the sink closes). */
  flushRefusals(): void {
    this.refusals.flush();
  }

  openSession(start: SessionStart): SessionRecorder {
    return new SessionRecorder(this, start);
  }

  rpc(f: RpcFacts): void {
    const error = f.error !== null ? { code: f.error.code, message: f.error.message } : f.status !== 0 ? { code: f.status, message: f.upstreamMessage ?? '' } : null;
    this.emit({
      type: 'rpc',
      time: auditTime(),
      sessionId: f.sessionId,
      engine: f.engine,
      peer: f.peer,
      identity: f.identity === null ? null : auditIdentity(f.identity),
      xfcc: f.xfcc,
      method: f.method,
      operation: f.operation,
      paths: f.paths,
      decision: f.decision,
      rule: f.rule,
      reason: f.reason,
      traceId: f.traceId,
      status: f.status,
      documents: f.documents,
      durationUs: Number((process.hrtime.bigint() - f.startedAt) / 1000n),
      outcome: f.outcome,
      error,
      ...(f.throttleWaitMs === undefined || f.throttleWaitMs <= 0 ? {} : { throttleWaitMs: f.throttleWaitMs }),
    }, f);
  }

  /** An issue, revoke or rotation of a credential, refused or done (credential.ts builds it). */
  credential(f: CredentialFacts): void {
    this.emit(credentialEvent(f));
  }

  /** Something a security team must look at now (types.ts, AlertEvent). */
  alert(f: AlertFacts): void {
    this.emit({
      type: 'alert',
      time: auditTime(),
      sessionId: f.sessionId,
      engine: f.engine,
      alert: f.alert,
      identity: f.identity === null ? null : auditIdentity(f.identity),
      lease: { id: f.lease.id, role: f.lease.role, account: f.lease.account },
      reason: f.reason,
      action: f.action,
    });
  }

  /** @internal the one way out: the sink, then the channel (with `facts` when someone listens). */
  emit(event: EngineEvent, facts?: ReportedFacts): void {
    this.sink.record(event);
    const channel = channelOf(event.engine, event.type);
    if (!channel.hasSubscribers) return;
    if (facts !== undefined) (event as { [REPORTED_FACTS]?: ReportedFacts })[REPORTED_FACTS] = facts;
    channel.publish(event);
  }
}

/** One session's statements and its end; the end is recorded exactly once. */
export class SessionRecorder {
  private readonly identity: AuditIdentity;
  private ended = false;
  statements = 0;

  constructor(
    private readonly recorder: AuditRecorder,
    private readonly start: SessionStart,
  ) {
    this.identity = auditIdentity(start.identity);
  }

  statement(f: StatementFacts): void {
    this.statements++;
    const event: StatementEvent = {
      type: 'statement',
      time: auditTime(),
      sessionId: this.start.sessionId,
      engine: this.start.engine,
      identity: this.identity,
      traceId: f.traceId,
      command: f.command,
      verb: f.verb,
      verbs: f.verbs ?? (f.verb === null ? [] : [f.verb]),
      statement: f.statement,
      truncated: f.truncated ?? false,
      statementBytes: f.statementBytes ?? null,
      statementSha256: f.statementSha256 ?? null,
      database: f.database,
      decision: f.decision,
      rule: f.decision === 'allow' ? this.start.rule : null,
      upstreamRole: this.start.role,
      upstreamConnectionId: this.start.upstreamConnectionId,
      rowsReturned: f.rowsReturned,
      rowsAffected: f.rowsAffected,
      durationUs: f.durationUs,
      outcome: f.outcome,
      error: errorOf(f.error),
      ...(f.prepared == null ? {} : { prepared: f.prepared }),
      ...(f.throttleWaitMs === undefined || f.throttleWaitMs <= 0 ? {} : { throttleWaitMs: f.throttleWaitMs }),
    };
    this.recorder.emit(event, f);
  }

  /** strict mode: the statement about to go upstream (its own event follows with the outcome). */
  intent(f: { readonly command: string; readonly statement: string | null; readonly traceId: string }): void {
    this.recorder.emit({
      type: 'intent',
      time: auditTime(),
      sessionId: this.start.sessionId,
      engine: this.start.engine,
      identity: this.identity,
      traceId: f.traceId,
      command: f.command,
      statement: f.statement,
      paths: [],
    });
  }

  /** Records the session's end; later calls do nothing (a session ends one way only). */
  end(f: SessionEndFacts): void {
    if (this.ended) return;
    this.ended = true;
    this.recorder.emit({
      type: 'session_end',
      time: auditTime(),
      sessionId: this.start.sessionId,
      engine: this.start.engine,
      identity: this.identity,
      statements: this.statements,
      bytesFromClient: f.bytesFromClient,
      bytesFromUpstream: f.bytesFromUpstream,
      durationMs: Date.now() - this.start.startedAt,
      reason: f.reason,
    });
  }
}
