/**
 * Headers across the Firestore hop: what of the caller's goes upstream, what of
 * Firestore's comes back, and the gRPC status they carry.
 */
import { constants, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { GrpcStatus } from '../../transport/grpc/index.ts';

/** Headers that describe one hop, or carry the caller's credentials: never forwarded. */
const NOT_FORWARDED = new Set(['authorization', 'x-forwarded-client-cert', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'cookie']);

export function forwardedHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  copyHeaders(headers, out);
  return out;
}

export function responseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { [constants.HTTP2_HEADER_STATUS]: headers[constants.HTTP2_HEADER_STATUS] ?? 200 };
  copyHeaders(headers, out);
  return out;
}

/** Every header but pseudo-headers and the ones that never cross meshgate (hot path: no Object.entries). */
function copyHeaders(from: IncomingHttpHeaders, to: OutgoingHttpHeaders): void {
  for (const name in from) {
    const value = from[name];
    if (value === undefined || name.charCodeAt(0) === 58 /* ':' */ || NOT_FORWARDED.has(name)) continue;
    to[name] = value;
  }
}

export function trailerHeaders(trailers: IncomingHttpHeaders | null): OutgoingHttpHeaders {
  if (trailers === null) return { 'grpc-status': String(GrpcStatus.UNKNOWN), 'grpc-message': 'upstream sent no status' };
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(trailers)) if (!name.startsWith(':') && value !== undefined) out[name] = value;
  return out;
}

export function statusOf(headers: IncomingHttpHeaders): number {
  const value = Number(headers['grpc-status']);
  return Number.isInteger(value) ? value : GrpcStatus.UNKNOWN;
}

export function messageOf(headers: IncomingHttpHeaders): string | null {
  const value = headers['grpc-message'];
  if (typeof value !== 'string') return null;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
