/**
 * gRPC status codes and the trailers-only response meshgate sends when it refuses a call
 * itself. https://github.com/grpc/grpc/blob/master/doc/statuscodes.md and
 * https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md (Status-Message is
 * percent-encoded UTF-8).
 */
import { constants, type ServerHttp2Stream } from 'node:http2';
import type { ErrorKind, MeshgateError } from '../../errors/index.ts';

export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcStatus = (typeof GrpcStatus)[keyof typeof GrpcStatus];

const STATUS_OF_KIND: Record<ErrorKind, GrpcStatus> = {
  unauthenticated: GrpcStatus.UNAUTHENTICATED,
  access_denied: GrpcStatus.PERMISSION_DENIED,
  bad_request: GrpcStatus.INVALID_ARGUMENT,
  limit_exceeded: GrpcStatus.RESOURCE_EXHAUSTED,
  unavailable: GrpcStatus.UNAVAILABLE,
  config: GrpcStatus.INTERNAL,
  internal: GrpcStatus.INTERNAL,
};

export function grpcStatusOf(error: MeshgateError): GrpcStatus {
  return STATUS_OF_KIND[error.kind];
}

/** Percent-encodes everything outside printable ASCII and '%' itself, as the spec asks. */
export function encodeStatusMessage(message: string): string {
  return Buffer.from(message, 'utf8').reduce((out, byte) => {
    const printable = byte >= 0x20 && byte <= 0x7e && byte !== 0x25;
    return out + (printable ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`);
  }, '');
}

/**
 * Ends a call that never reached the upstream. Trailers-only (HEADERS with grpc-status and
 * END_STREAM) by default; `withHeaders` sends response headers first and the status in
 * trailers, because Google's client libraries retry a server-streaming call that failed
 * before any response metadata as if the network had dropped it.
 */
export function refuseCall(stream: ServerHttp2Stream, error: MeshgateError, options: { readonly withHeaders?: boolean } = {}): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(constants.NGHTTP2_CANCEL);
    return;
  }
  const status = { 'grpc-status': String(grpcStatusOf(error)), 'grpc-message': encodeStatusMessage(`[${error.code}] ${error.message}`) };
  const head = { [constants.HTTP2_HEADER_STATUS]: 200, [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc' };
  if (options.withHeaders === true) {
    stream.respond(head, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers(status));
    stream.end();
    return;
  }
  stream.respond({ ...head, ...status }, { endStream: true });
}
