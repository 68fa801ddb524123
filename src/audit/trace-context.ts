/**
 * W3C trace context: the traceparent value and fresh trace and span ids. Generic: MySQL reads
 * it from sqlcommenter comments (engines/mysql/sql/sqlcommenter.ts), gRPC from a header.
 * https://www.w3.org/TR/trace-context/#traceparent-header
 */
import { randomBytes } from 'node:crypto';

export interface TraceParent {
  readonly traceId: string;
  readonly spanId: string;
  readonly flags: string;
}

// Version 00 is exactly this shape; later versions may append fields, which we do not accept.
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

export function parseTraceparent(value: string): TraceParent | null {
  const m = TRACEPARENT.exec(value);
  if (m === null) return null;
  const [, traceId, spanId, flags] = m;
  if (traceId === undefined || spanId === undefined || flags === undefined) return null;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null;
  return { traceId, spanId, flags };
}

export function formatTraceparent(tp: TraceParent): string {
  return `00-${tp.traceId}-${tp.spanId}-${tp.flags}`;
}

// Trace ids are minted per statement; one randomBytes call per 256 ids keeps that cheap.
const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let poolOffset = POOL_SIZE;

function takeRandom(n: number): string {
  if (poolOffset + n > pool.length) {
    pool = randomBytes(POOL_SIZE);
    poolOffset = 0;
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + n);
  poolOffset += n;
  return hex;
}

/** 32 lower-case hex digits, never all zeros (which W3C reserves as invalid). */
export function newTraceId(): string {
  for (;;) {
    const id = takeRandom(16);
    if (id !== ZERO_TRACE) return id;
  }
}

/** 16 lower-case hex digits, never all zeros. */
export function newSpanId(): string {
  for (;;) {
    const id = takeRandom(8);
    if (id !== ZERO_SPAN) return id;
  }
}
