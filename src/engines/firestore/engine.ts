/**
 * The Firestore engine behind the gRPC front door: calls with a proven identity become
 * FirestoreCalls; unknown methods, calls and connections the front door refused are answered
 * and audited. It knows its calls under way, so a shutdown waits for them (bounded).
 */
import { randomBytes } from 'node:crypto';
import { mgError } from '../../errors/index.ts';
import { refuseCall, rpcFacts, traceOf, type GrpcCall, type RefusedCall, type RefusedConnection } from '../../transport/grpc/index.ts';
import { FirestoreCall } from './call.ts';
import { logRefusal } from '../refusal-log.ts';
import { METHODS } from './codec/access.ts';
import type { FirestoreEngineContext } from './context.ts';

/** Unique per process and cheap: a random prefix and a counter, not random bytes per call. */
const SESSION_PREFIX = randomBytes(4).toString('hex');
let calls = 0;
const nextSessionId = () => `${SESSION_PREFIX}${(++calls).toString(16).padStart(8, '0')}`;

export class FirestoreEngine {
  private readonly live = new Set<FirestoreCall>();
  /** Told once no call is open (shutdown waits for it). */
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly ctx: FirestoreEngineContext) {}

  get open(): number {
    return this.live.size;
  }

  /** Resolves once no call is open. */
  idle(): Promise<void> {
    if (this.live.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * At shutdown, once no new call can arrive: Listens end now, the other calls get until
   * firestore.timeouts.drain to finish, and what is still open then is cancelled; each call's
   * event is recorded before this resolves.
   */
  async settle(reason: string): Promise<void> {
    for (const call of [...this.live]) call.shutdown(reason);
    if (this.live.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.idle(),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, this.ctx.drainTimeoutMs))),
      ]);
      clearTimeout(timer);
    }
    const seconds = this.ctx.drainTimeoutMs / 1000;
    for (const call of [...this.live]) call.abort(`${reason}, and Firestore had not answered within ${seconds} s (firestore.timeouts.drain), so meshgate cancelled the call`);
  }

  readonly onCall = (call: GrpcCall): void => {
    const spec = METHODS.get(call.method);
    const sessionId = nextSessionId();
    if (spec === undefined) {
      const error = mgError('MG_COMMAND_FORBIDDEN', `meshgate does not serve ${call.method}; it serves the google.firestore.v1.Firestore methods`);
      refuseCall(call.stream, error);
      logRefusal(this.ctx.log, error, { engine: 'firestore', sessionId, peer: call.peer, identity: call.identity, method: call.method });
      this.ctx.audit.rpc(
        rpcFacts({ engine: 'firestore', sessionId, peer: call.peer, identity: call.identity, xfcc: call.xfcc, method: call.method, operation: null, paths: [], decision: 'deny', rule: null, reason: error.message, ...traceOf(call.headers), error, documents: 0, startedAt: call.startedAt, identifiedAt: call.identifiedAt }),
      );
      return;
    }
    const running: FirestoreCall = new FirestoreCall(call, spec, this.ctx, sessionId, () => {
      this.live.delete(running);
      if (this.live.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    });
    this.live.add(running);
    running.start();
  };

  /** A connection turned away before any call (TLS, not HTTP/2, too slow): audited, bounded. */
  readonly onConnectionRefused = (refusal: RefusedConnection): void => {
    const sessionId = nextSessionId();
    const written = this.ctx.audit.refusedCaller({
      engine: 'firestore',
      sessionId,
      peer: refusal.peer,
      tls: null,
      identity: null,
      clientUser: null,
      database: null,
      decision: 'deny',
      rule: null,
      reason: refusal.error.message,
      role: null,
      upstreamConnectionId: null,
      error: refusal.error,
    });
    if (written) logRefusal(this.ctx.log, refusal.error, { engine: 'firestore', sessionId, peer: refusal.peer, identity: null });
  };

  readonly onRefused = (refusal: RefusedCall): void => {
    const sessionId = nextSessionId();
    logRefusal(this.ctx.log, refusal.error, { engine: 'firestore', sessionId, peer: refusal.peer, identity: null, method: refusal.method });
    this.ctx.audit.rpc(
      rpcFacts({
        engine: 'firestore',
        sessionId,
        peer: refusal.peer,
        identity: null,
        xfcc: refusal.xfcc,
        method: refusal.method,
        operation: null,
        paths: [],
        decision: 'deny',
        rule: null,
        reason: refusal.error.message,
        ...traceOf(refusal.headers),
        error: refusal.error,
        documents: 0,
        startedAt: refusal.startedAt,
      }),
    );
  };
}
