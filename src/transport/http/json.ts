/**
 * JSON over HTTP as meshgate's HTTPS endpoints speak it: statuses from error kinds, bounded
 * bodies, `{ error: { code, message } }` answers. Each endpoint brings its own limits and
 * exceptions; nothing here decides what a request may do.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { mgError, type ErrorCode, type ErrorKind, type MeshgateError } from '../../errors/index.ts';

const KIND_STATUS: Readonly<Record<ErrorKind, number>> = {
  unauthenticated: 401,
  access_denied: 403,
  bad_request: 400,
  limit_exceeded: 429,
  unavailable: 503,
  config: 500,
  internal: 500,
};

/** Statuses an endpoint gives instead of its kind's; a code wins over a kind. */
export interface StatusExceptions {
  readonly codes?: Partial<Record<ErrorCode, number>>;
  readonly kinds?: Partial<Record<ErrorKind, number>>;
}

export function statusOf(error: MeshgateError, exceptions: StatusExceptions = {}): number {
  // readBody's refusal is limit_exceeded, yet it is the body that is wrong, not the rate.
  const code = exceptions.codes?.[error.code] ?? (error.code === 'MG_PACKET_TOO_LARGE' ? 413 : undefined);
  return code ?? exceptions.kinds?.[error.kind] ?? KIND_STATUS[error.kind];
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(`${JSON.stringify(body)}\n`);
}

export function sendError(res: ServerResponse, status: number, error: { code: string; message: string }, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { code: error.code, message: error.message } }, headers);
}

export interface BodyLimit {
  /** Bounds what a caller can make meshgate buffer. */
  readonly limit: number;
  /** Follows "the request body is larger than N bytes; ": what the endpoint does take. */
  readonly tooLargeHint: string;
}

/**
 * Collects a stream's bytes up to `limit`. Past it the read fails with `tooLarge()` and
 * `overflow` decides what becomes of the stream: a server still answers, a client hangs up.
 */
export function readUpTo(stream: Readable, limit: number, tooLarge: () => Error, overflow: () => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        stream.off('data', onData);
        overflow();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    stream.on('data', onData);
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

/** The request body as text, refused with MG_PACKET_TOO_LARGE as soon as it passes the limit. */
export async function readBody(req: IncomingMessage, { limit, tooLargeHint }: BodyLimit): Promise<string> {
  const tooLarge = () => mgError('MG_PACKET_TOO_LARGE', `the request body is larger than ${limit} bytes; ${tooLargeHint}`);
  if (Number(req.headers['content-length'] ?? '0') > limit) throw tooLarge();
  // Paused, not destroyed, so the 413 answer can still be written; the connection closes after it.
  return (await readUpTo(req, limit, tooLarge, () => req.pause())).toString('utf8');
}
