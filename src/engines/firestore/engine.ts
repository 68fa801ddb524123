/**
 * The Firestore engine behind the gRPC front door: calls with a proven identity become
 * FirestoreCalls; unknown methods and calls the front door refused are answered and audited.
 */
import { randomBytes } from 'node:crypto';
import { mgError } from '../../errors/index.ts';
import { refuseCall, rpcFacts, traceIdOf, type GrpcCall, type RefusedCall } from '../../transport/grpc/index.ts';
import { FirestoreCall } from './call.ts';
import { logRefusal } from '../refusal-log.ts';
import { METHODS } from './codec/access.ts';
import type { FirestoreEngineContext } from './context.ts';

/** Unique per process and cheap: a random prefix and a counter, not random bytes per call. */
const SESSION_PREFIX = randomBytes(4).toString('hex');
let calls = 0;
const nextSessionId = () => `${SESSION_PREFIX}${(++calls).toString(16).padStart(8, '0')}`;

export class FirestoreEngine {
  constructor(private readonly ctx: FirestoreEngineContext) {}

  readonly onCall = (call: GrpcCall): void => {
    const spec = METHODS.get(call.method);
    const sessionId = nextSessionId();
    if (spec === undefined) {
      const error = mgError('MG_COMMAND_FORBIDDEN', `meshgate does not serve ${call.method}; it serves the google.firestore.v1.Firestore methods`);
      refuseCall(call.stream, error);
      logRefusal(this.ctx.log, error, { engine: 'firestore', sessionId, peer: call.peer, identity: call.identity, method: call.method });
      this.ctx.audit.rpc(
        rpcFacts({ engine: 'firestore', sessionId, peer: call.peer, identity: call.identity, xfcc: call.xfcc, method: call.method, operation: null, paths: [], decision: 'deny', rule: null, reason: error.message, traceId: traceIdOf(call.headers), error, documents: 0, startedAt: call.startedAt }),
      );
      return;
    }
    new FirestoreCall(call, spec, this.ctx, sessionId).start();
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
        traceId: traceIdOf(refusal.headers),
        error: refusal.error,
        documents: 0,
        startedAt: refusal.startedAt,
      }),
    );
  };
}
