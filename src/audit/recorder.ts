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
import type { Identity } from '../identity/index.ts';
import { auditTime } from './clock.ts';
import { credentialEvent, type CredentialFacts } from './credential.ts';
import { connectionEvent, errorOf, policyFields, rpcEvent } from './events.ts';
import { REPORTED_FACTS, type AlertFacts, type ConnectionFacts, type Engine, type PolicyChangeFacts, type PolicyFacts, type ReportedFacts, type RpcFacts, type SessionEndFacts, type SessionStart, type StatementFacts } from './facts.ts';
import { auditIdentity } from './identity.ts';
import { DEFAULT_REFUSAL_LIMITS, RefusalLimiter, type RefusalLimits } from './refusals.ts';
import { STATEMENT_JSON, statementJsonParts, type StatementJsonParts } from './statement-json.ts';
import type { AuditDurability, AuditEvent, AuditIdentity, AuditSink, PolicyEvent, RecoveredEvent, StatementEvent } from './types.ts';

export * from './facts.ts';
/** What engines report; `recovered` events are the sink's own. */
type EngineEvent = Exclude<AuditEvent, RecoveredEvent | PolicyEvent>;

const policyChannel = diagnostics.channel('meshgate:policy');

export type { CredentialFacts } from './credential.ts';

// By engine, then type: looked up once per event, so no name is built on the way.
const channels = new Map<Engine, Map<string, diagnostics.Channel>>();
function channelOf(engine: Engine, type: EngineEvent['type']): diagnostics.Channel {
  let byType = channels.get(engine);
  if (byType === undefined) channels.set(engine, (byType = new Map()));
  let channel = byType.get(type);
  if (channel === undefined) byType.set(type, (channel = diagnostics.channel(`meshgate:${engine}:${type}`)));
  return channel;
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
    this.emit(rpcEvent(f), f);
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

  /** A policy version put in force or refused (types.ts, PolicyEvent); on `meshgate:policy` too. */
  policyChange(f: PolicyChangeFacts): void {
    const event: PolicyEvent = {
      type: 'policy',
      time: auditTime(),
      engine: null,
      sessionId: null,
      action: f.action,
      outcome: f.error === null ? 'completed' : 'refused',
      trigger: f.trigger,
      identity: f.identity == null ? null : auditIdentity(f.identity),
      policyVersion: f.policyVersion,
      previousVersion: f.previousVersion,
      rules: f.rules,
      source: f.source,
      sessionsEnded: f.sessionsEnded ?? 0,
      error: f.error === null ? null : { code: f.error.code, message: f.error.message },
    };
    this.sink.record(event);
    if (policyChannel.hasSubscribers) policyChannel.publish(event);
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
  /** The rule, version and dry run behind the session's grant; a re-evaluation replaces them. */
  private rule: string | null;
  private policy: ReturnType<typeof policyFields>;
  /** What every statement event of the session says alike, serialized once (statement-json.ts). */
  private json: StatementJsonParts;

  constructor(
    private readonly recorder: AuditRecorder,
    private readonly start: SessionStart,
  ) {
    this.identity = auditIdentity(start.identity);
    this.rule = start.rule;
    this.policy = policyFields(start);
    this.json = this.jsonParts();
  }

  /** A reloaded policy still allows the session, by `rule` of its version: later statements say so. */
  redecided(rule: string | null, policy: PolicyFacts): void {
    this.rule = rule;
    this.policy = policyFields(policy);
    this.json = this.jsonParts();
  }

  private jsonParts(): StatementJsonParts {
    const { sessionId, engine, role, upstreamConnectionId } = this.start;
    return statementJsonParts({ sessionId, engine, identity: this.identity }, this.policy, { upstreamRole: role, upstreamConnectionId });
  }

  statement(f: StatementFacts): void {
    this.statements++;
    const event: StatementEvent & { readonly [STATEMENT_JSON]: StatementJsonParts } = {
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
      rule: f.decision === 'allow' ? this.rule : null,
      ...this.policy,
      upstreamRole: this.start.role,
      upstreamConnectionId: this.start.upstreamConnectionId,
      rowsReturned: f.rowsReturned,
      rowsAffected: f.rowsAffected,
      durationUs: f.durationUs,
      outcome: f.outcome,
      error: errorOf(f.error),
      ...(f.prepared == null ? {} : { prepared: f.prepared }),
      ...(f.throttleWaitMs === undefined || f.throttleWaitMs <= 0 ? {} : { throttleWaitMs: f.throttleWaitMs }),
      [STATEMENT_JSON]: this.json,
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
