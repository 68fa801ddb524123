/** Audit events for gRPC calls, from what the front door and the engine learned. */
import { auditTime } from '../../audit/clock.ts';
import { newTraceId, parseTraceparent } from '../../audit/trace-context.ts';
import { auditIdentity } from '../../audit/identity.ts';
import type { RpcEvent } from '../../audit/types.ts';
import type { MeshgateError } from '../../errors/index.ts';
import type { Identity } from '../../identity/types.ts';
import type { IncomingHttpHeaders } from 'node:http2';
import type { XfccNote } from '../../identity/resolve.ts';
import type { GrpcPeer } from './front-door.ts';
import { grpcStatusOf, GrpcStatus } from './status.ts';

/** The caller's W3C trace id from `traceparent` metadata, or a new one. */
export function traceIdOf(headers: IncomingHttpHeaders): string {
  const value = headers['traceparent'];
  const parsed = typeof value === 'string' ? parseTraceparent(value) : null;
  return parsed?.traceId ?? newTraceId();
}

export interface RpcOutcome {
  readonly engine: RpcEvent['engine'];
  readonly sessionId: string;
  readonly peer: GrpcPeer;
  readonly identity: Identity | null;
  readonly xfcc: XfccNote | null;
  readonly method: string;
  readonly operation: string | null;
  readonly paths: readonly string[];
  readonly decision: 'allow' | 'deny';
  readonly rule: string | null;
  readonly reason: string;
  readonly traceId: string;
  /** Meshgate's own refusal, or null when the upstream answered. */
  readonly error: MeshgateError | null;
  /** The upstream's status when it answered; ignored when `error` is set. */
  readonly status?: number;
  readonly upstreamMessage?: string;
  readonly documents: number;
  readonly startedAt: bigint;
}

export function rpcEvent(o: RpcOutcome): RpcEvent {
  const status = o.error !== null ? grpcStatusOf(o.error) : (o.status ?? GrpcStatus.OK);
  const error =
    o.error !== null
      ? { code: o.error.code, message: o.error.message }
      : status !== GrpcStatus.OK
        ? { code: status, message: o.upstreamMessage ?? '' }
        : null;
  return {
    type: 'rpc',
    time: auditTime(),
    sessionId: o.sessionId,
    engine: o.engine,
    peer: o.peer,
    identity: o.identity === null ? null : auditIdentity(o.identity),
    xfcc: o.xfcc,
    method: o.method,
    operation: o.operation,
    paths: o.paths,
    decision: o.decision,
    rule: o.rule,
    reason: o.reason,
    traceId: o.traceId,
    status,
    documents: o.documents,
    durationUs: Number((process.hrtime.bigint() - o.startedAt) / 1000n),
    error,
  };
}
