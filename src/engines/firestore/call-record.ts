/**
 * The audit events and refusal log lines of one Firestore call: one event when it ends, with
 * its outcome, and one per Listen target refused on its own along the way.
 */
import type { Outcome } from '../../audit/index.ts';
import type { MeshgateError } from '../../errors/index.ts';
import { GrpcStatus, rpcFacts, type CallTrace, type GrpcCall } from '../../transport/grpc/index.ts';
import { logRefusal } from '../refusal-log.ts';
import type { CallPolicy } from './call-policy.ts';
import type { FirestoreEngineContext } from './context.ts';

export interface CallEnd {
  /** What ended the call: Firestore's status, or CANCELLED; null for meshgate's own refusal. */
  readonly status: number | null;
  readonly upstreamMessage: string | null;
  readonly error: MeshgateError | null;
  /** Whether anything was sent to Firestore. */
  readonly forwarded: boolean;
  /** Whether what was sent may have changed data (writes, a transaction's end). */
  readonly mayWrite: boolean;
  readonly documents: number;
  /** When it does not follow from the rest (see outcomeOf). */
  readonly outcome?: Outcome;
}

export class CallRecord {
  constructor(
    private readonly ctx: FirestoreEngineContext,
    private readonly call: GrpcCall,
    readonly sessionId: string,
    private readonly trace: CallTrace,
    private readonly policy: CallPolicy,
  ) {}

  logRefusal(error: MeshgateError): void {
    logRefusal(this.ctx.log, error, { engine: 'firestore', sessionId: this.sessionId, peer: this.call.peer, identity: this.call.identity, rule: this.policy.rule, method: this.call.method });
  }

  listenRefusal(paths: string[], error: MeshgateError): void {
    this.logRefusal(error);
    this.ctx.audit.rpc(
      rpcFacts({
        ...this.about(),
        operation: 'read',
        paths,
        decision: 'deny',
        rule: this.policy.rule,
        ...this.policy.marks,
        reason: error.message,
        error,
        documents: 0,
        startedAt: process.hrtime.bigint(),
      }),
    );
  }

  end(end: CallEnd): void {
    const { status, upstreamMessage, error } = end;
    const outcome = end.outcome ?? outcomeOf(end);
    const denied = error !== null && error.code === 'MG_POLICY_DENIED';
    this.ctx.audit.rpc(
      rpcFacts({
        ...this.about(),
        operation: this.policy.operation,
        paths: this.policy.paths,
        decision: denied || (error !== null && !end.forwarded) ? 'deny' : 'allow',
        rule: this.policy.rule,
        ...this.policy.marks,
        // Calls that name no path (BeginTransaction, Rollback, an empty Commit) touch no data;
        // the reads and writes made in a transaction are judged one by one.
        reason: error?.message ?? (this.policy.rule === null ? 'touches no documents' : `allowed by ${this.policy.rule}`),
        error,
        // The status the caller saw; an unknown outcome's caller saw its own cancellation.
        ...(status === null || (error !== null && outcome !== 'unknown') ? {} : { status }),
        ...(upstreamMessage === null ? {} : { upstreamMessage }),
        documents: status === GrpcStatus.OK || status === null ? end.documents : 0,
        startedAt: this.call.startedAt,
        outcome,
        traceQueryText: this.policy.traceQueryText,
        throttleWaitMs: this.policy.waitedMs,
      }),
    );
  }

  /** What every audit event of this call says about who called what, and in which trace. */
  private about() {
    const { peer, identity, xfcc, method, identifiedAt } = this.call;
    return { engine: 'firestore', sessionId: this.sessionId, peer, identity, xfcc, method, traceId: this.trace.traceId, parent: this.trace.parent, identifiedAt } as const;
  }
}

/**
 * Firestore's own status decides (OK completed, anything else failed); without one, a call
 * that sent writes and was cut off is unknown, and anything else failed (a refusal before
 * anything was sent, a read cancelled).
 */
function outcomeOf(end: CallEnd): Outcome {
  if (end.status !== null && end.error === null) return end.status === GrpcStatus.OK ? 'completed' : 'failed';
  return end.error !== null && end.forwarded && end.mayWrite ? 'unknown' : 'failed';
}
