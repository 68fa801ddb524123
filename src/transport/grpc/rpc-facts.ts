/** What the front door and a gRPC engine learned about a call, as facts for the audit recorder. */
import { newTraceId, parseTraceparent, type RpcFacts } from '../../audit/index.ts';
import type { MeshgateError } from '../../errors/index.ts';
import type { Identity, XfccNote } from '../../identity/index.ts';
import type { IncomingHttpHeaders } from 'node:http2';
import type { GrpcPeer } from './front-door.ts';
import { grpcStatusOf, GrpcStatus } from './status.ts';

/** The caller's W3C trace id from `traceparent` metadata, or a new one. */
export function traceIdOf(headers: IncomingHttpHeaders): string {
  const value = headers['traceparent'];
  const parsed = typeof value === 'string' ? parseTraceparent(value) : null;
  return parsed?.traceId ?? newTraceId();
}

export interface RpcOutcome {
  readonly engine: RpcFacts['engine'];
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

/**
 * The facts of one call for the audit recorder, with the status the caller received:
 * meshgate's own refusal rendered as gRPC renders it, else the upstream's.
 */
export function rpcFacts(o: RpcOutcome): RpcFacts {
  const status = o.error !== null ? grpcStatusOf(o.error) : (o.status ?? GrpcStatus.OK);
  return {
    engine: o.engine,
    sessionId: o.sessionId,
    peer: o.peer,
    identity: o.identity,
    xfcc: o.xfcc,
    method: o.method,
    operation: o.operation,
    paths: o.paths,
    decision: o.decision,
    rule: o.rule,
    reason: o.reason,
    traceId: o.traceId,
    status,
    error: o.error,
    ...(o.upstreamMessage === undefined ? {} : { upstreamMessage: o.upstreamMessage }),
    documents: o.documents,
    startedAt: o.startedAt,
  };
}
