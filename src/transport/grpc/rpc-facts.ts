/** What the front door and a gRPC engine learned about a call, as facts for the audit recorder. */
import { newTraceId, parseTraceparent, type Outcome, type RpcFacts, type TraceParent } from '../../audit/index.ts';
import type { IncomingHttpHeaders } from 'node:http2';
import { grpcStatusOf, GrpcStatus } from './status.ts';

/** A call's trace: the caller's, from its `traceparent` metadata (`parent` is its span), or a new one. */
export interface CallTrace {
  readonly traceId: string;
  readonly parent: TraceParent | null;
}

export function traceOf(headers: IncomingHttpHeaders): CallTrace {
  const value = headers['traceparent'];
  const parent = typeof value === 'string' ? parseTraceparent(value) : null;
  return { traceId: parent?.traceId ?? newTraceId(), parent };
}

/**
 * A call's facts as the front door and the engine know them: the recorder's, except that
 * the status may be left out — it follows from meshgate's refusal, or is the upstream's.
 */
export type RpcOutcome = Omit<RpcFacts, 'status' | 'outcome'> & {
  /** The status the caller saw, when it is not the one `error` renders as (the upstream's, or CANCELLED). */
  readonly status?: number;
  /** Default: from the status (OK is `completed`, anything else `failed`); `unknown` only when said. */
  readonly outcome?: Outcome;
};

/**
 * The facts of one call for the audit recorder, with the status the caller received:
 * meshgate's own refusal rendered as gRPC renders it, else the upstream's.
 */
export function rpcFacts(o: RpcOutcome): RpcFacts {
  const status = o.status ?? (o.error !== null ? grpcStatusOf(o.error) : GrpcStatus.OK);
  return { ...o, status, outcome: o.outcome ?? (status === GrpcStatus.OK ? 'completed' : 'failed') };
}
