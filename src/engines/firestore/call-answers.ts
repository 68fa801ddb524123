/**
 * How meshgate answers a Firestore call itself, with a status of its own, so that gRPC
 * clients read the status it means rather than a reset stream they retry.
 */
import { constants, type ServerHttp2Stream } from 'node:http2';
import type { MeshgateError } from '../../errors/index.ts';
import { refuseCall } from '../../transport/grpc/index.ts';

/**
 * Answers at once, and resets the caller's half of the stream once the status is out: for a
 * caller that has shown it will not finish its request (a time-out).
 */
export function answerNow(stream: ServerHttp2Stream, error: MeshgateError, withHeaders: boolean): void {
  refuseCall(stream, error, { withHeaders });
  const reset = () =>
    setImmediate(() => {
      if (!stream.destroyed) stream.close(constants.NGHTTP2_NO_ERROR);
    });
  // With headers first, the status goes in trailers, sent when Node asks for them.
  if (withHeaders && !stream.destroyed) stream.once('wantTrailers', reset);
  else reset();
}

/**
 * Answers once the caller has sent its whole request (`sent`: it has, or it never ends it, as
 * a stream). Answering before a unary caller's END_STREAM makes Node reset the stream, which
 * gRPC clients read as INTERNAL and retry; that END_STREAM is a moment away, so it is awaited
 * a second at most.
 */
export function answerWhenSent(stream: ServerHttp2Stream, error: MeshgateError, withHeaders: boolean, sent: boolean): void {
  const answer = () => refuseCall(stream, error, { withHeaders });
  if (sent || stream.destroyed) {
    answer();
    return;
  }
  const timer = setTimeout(answer, 1000);
  timer.unref();
  stream.once('end', () => {
    clearTimeout(timer);
    answer();
  });
  stream.resume();
}
