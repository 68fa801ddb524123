/**
 * The stages a MySQL login runs through, in DESIGN's order:
 *
 *   identity ──▶ policy ──▶ throttle ──▶ upstream (a credential lease, a pooled or fresh
 *   connection) ──▶ audit
 *
 * The session (session.ts) speaks the protocol and reports the login here; this handler
 * knows nothing of sockets or packets. A refusal at any stage comes back as a coded error
 * the session renders as an ERR packet; every refusal is audited and logged here.
 */
import type { ConnectionFacts, LoginTiming, PeerAddress, SessionRecorder } from '../../audit/index.ts';
import { asMeshgateError, mgError, type MeshgateError } from '../../errors/index.ts';
import type { Identity, TlsPeerFacts } from '../../identity/index.ts';
import { judge, type JudgementMarks } from '../../policy/index.ts';
import { logRefusal } from '../refusal-log.ts';
import { Capability, MariadbCapability, RELAYABLE_CAPABILITIES, RELAYABLE_MARIADB_CAPABILITIES } from './codec/constants.ts';
import type { HandshakeResponse } from './codec/handshake.ts';
import { CommandStages, type SessionCommands } from './command-stages.ts';
import type { MysqlEngineContext } from './context.ts';
import type { SessionDirectory } from './directory.ts';
import type { UpstreamUse } from './upstream-source.ts';
import { waitForAdmission, type Admission } from '../../throttle/index.ts';

export interface LoginRequest {
  readonly sessionId: string;
  /** The connection id the greeting gave the client (KILL names it). */
  readonly connectionId: number;
  readonly peer: PeerAddress;
  readonly tls: TlsPeerFacts | null;
  readonly response: HandshakeResponse;
  /** The clear-text password the client sent when asked for its token; null otherwise. */
  readonly token: string | null;
  /** Epoch milliseconds the connection was accepted. */
  readonly startedAt: number;
}

export type LoginOutcome =
  | { readonly accepted: true; readonly upstream: UpstreamUse; readonly commands: SessionCommands }
  | { readonly accepted: false; readonly error: MeshgateError };

export interface RefusedLogin {
  readonly sessionId: string;
  readonly peer: PeerAddress;
  readonly tls: TlsPeerFacts | null;
  readonly response: HandshakeResponse | null;
  readonly error: MeshgateError;
  readonly identity?: Identity | null;
  readonly rule?: string | null;
  /** The policy version that refused, and a dry run's verdict, when policy judged the login. */
  readonly marks?: JudgementMarks;
  /** How far the login got, when it got to the stages (tracing reads it). */
  readonly login?: LoginTiming;
}

/** What the session needs from whoever runs the stages; tests hand it their own. */
export interface LoginHandler {
  /** Without a client certificate, may a token prove who it is (so the session asks for the password)? */
  wantsToken(tls: TlsPeerFacts | null): boolean;
  onLogin(request: LoginRequest): Promise<LoginOutcome>;
  /** A login the session itself refused (protocol, TLS, time-out): audit and log it. */
  onRefused(refusal: RefusedLogin): void;
}

/** Filled in as the login goes; read-only (LoginTiming) to whoever reads it after. */
type LoginMarks = { -readonly [K in keyof LoginTiming]: LoginTiming[K] };

export class LoginStages implements LoginHandler {
  constructor(
    private readonly ctx: MysqlEngineContext,
    private readonly directory: SessionDirectory,
  ) {}

  wantsToken(tls: TlsPeerFacts | null): boolean {
    return this.ctx.identity.acceptsTokens && tls?.peerCertificate == null;
  }

  async onLogin(request: LoginRequest): Promise<LoginOutcome> {
    const { response } = request;
    const login: LoginMarks = { acceptedAt: request.startedAt, began: process.hrtime.bigint() };
    const resolution = await this.ctx.identity.resolve({
      protocol: 'mysql',
      remoteAddress: request.peer.address,
      tls: request.tls,
      trustedHops: [],
      // Offered even when empty: a token over plain TCP is refused whatever it says.
      token: this.wantsToken(request.tls) ? { value: request.token ?? '', via: 'password' } : undefined,
    });
    login.identified = process.hrtime.bigint();
    if (resolution.identity === null) return this.refused(request, resolution.error, null, null, login);
    const identity = resolution.identity;

    const { decision, marks } = judge(this.ctx.policy.current(), identity, { engine: 'mysql', database: response.database });
    login.decided = process.hrtime.bigint();
    const refused = (error: MeshgateError): LoginOutcome => this.refused(request, error, identity, decision.ruleId, login, marks);
    if (!decision.allow || decision.role === null) return refused(mgError('MG_POLICY_DENIED', decision.reason));

    // No lease, no upstream login, no session that the audit cannot record.
    const unavailable = this.ctx.audit.refusal();
    if (unavailable !== null) return refused(unavailable);

    // A class that waits holds the login here (its queue is bounded, with a deadline).
    const admission = await waitForAdmission(this.ctx.throttle, { engine: 'mysql', kind: 'session', serviceClass: decision.serviceClass, principal: identity.spiffeId });
    if (!admission.admitted) return refused(admission.error);
    const budget = this.ctx.upstreamBudget == null ? null : await this.ctx.upstreamBudget.acquire({ serviceClass: decision.serviceClass, role: decision.role });
    if (budget !== null && !budget.admitted) {
      admission.release();
      return refused(budget.error);
    }
    const held = budget === null ? admission : bothReleased(admission, budget);

    const localFiles = decision.allowLocalInfile ? Capability.LOCAL_FILES : 0;
    const capabilities = (response.capabilities & (RELAYABLE_CAPABILITIES | Capability.CLIENT_MYSQL) & ~Capability.LOCAL_FILES) | localFiles;
    const attributes = new Map(response.attributes);
    attributes.set('meshgate_identity', identity.spiffeId);
    attributes.set('meshgate_session', request.sessionId);
    let upstream: UpstreamUse;
    const upstreamFrom = process.hrtime.bigint();
    try {
      upstream = await this.ctx.openUpstream(identity, decision.role, {
        database: response.database,
        capabilities: capabilities >>> 0,
        mariadbCapabilities: response.mariadbCapabilities & RELAYABLE_MARIADB_CAPABILITIES & ~MariadbCapability.CACHE_METADATA,
        charset: response.charset,
        maxPacketSize: response.maxPacketSize,
        attributes,
      }, request.sessionId);
    } catch (error) {
      held.release();
      login.upstream = { from: upstreamFrom, to: process.hrtime.bigint() };
      return refused(asMeshgateError(error));
    }
    login.upstream = { from: upstreamFrom, to: process.hrtime.bigint() };
    const audit: SessionRecorder = this.ctx.audit.openSession({
      engine: 'mysql',
      sessionId: request.sessionId,
      identity,
      role: decision.role,
      rule: decision.ruleId,
      ...marks,
      upstreamConnectionId: upstream.connection.connectionId,
      startedAt: request.startedAt,
    });
    const commands = new CommandStages(this.ctx, this.directory, {
      request,
      identity,
      role: decision.role,
      rule: decision.ruleId,
      marks,
      serviceClass: decision.serviceClass,
      allowLocalInfile: decision.allowLocalInfile,
      auditParameters: decision.auditParameters,
      traceQueryText: decision.traceQueryText,
      upstreamConnectionId: upstream.connection.connectionId,
      audit,
      admission: held,
      login,
    });
    return { accepted: true, upstream, commands };
  }

  onRefused(refusal: RefusedLogin): void {
    const { error } = refusal;
    const identity = refusal.identity ?? null;
    const rule = refusal.rule ?? null;
    if (error.kind === 'internal') this.ctx.log.error('session failed', { sessionId: refusal.sessionId, cause: String(error.cause) });
    const facts: ConnectionFacts = {
      engine: 'mysql',
      sessionId: refusal.sessionId,
      peer: refusal.peer,
      tls: refusal.tls,
      identity,
      clientUser: refusal.response?.username ?? null,
      database: refusal.response?.database ?? null,
      decision: 'deny',
      rule,
      reason: error.message,
      role: null,
      upstreamConnectionId: null,
      error,
      ...refusal.marks,
      ...(refusal.login === undefined ? {} : { login: refusal.login }),
    };
    // Nobody known yet (TLS, time-outs, garbage, certificates): bounded, so a flood cannot fill the disk.
    let written = true;
    if (identity === null) written = this.ctx.audit.refusedCaller(facts);
    else this.ctx.audit.connection(facts);
    if (written) logRefusal(this.ctx.log, error, { engine: 'mysql', sessionId: refusal.sessionId, peer: refusal.peer, identity, rule });
  }

  private refused(request: LoginRequest, error: MeshgateError, identity: Identity | null, rule: string | null, login: LoginTiming, marks?: JudgementMarks): LoginOutcome {
    this.onRefused({ sessionId: request.sessionId, peer: request.peer, tls: request.tls, response: request.response, error, identity, rule, login, ...(marks === undefined ? {} : { marks }) });
    return { accepted: false, error };
  }
}

/** The session's class admission and its upstream connection from the budget, given back together. */
function bothReleased(first: Admission & { admitted: true }, second: Admission & { admitted: true }): Admission & { admitted: true } {
  return { admitted: true, release: () => (first.release(), second.release()) };
}
