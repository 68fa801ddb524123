/**
 * The admin API's HTTP plumbing: statuses from error kinds, bounded JSON bodies, answers.
 * No decisions live here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mgError, type MeshgateError } from '../errors/index.ts';

/** Every request body is a small JSON object; this bounds what a caller can make meshgate buffer. */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

export function statusOf(error: MeshgateError): number {
  if (error.code === 'MG_PACKET_TOO_LARGE') return 413;
  if (error.code === 'MG_LEASE_NOT_FOUND') return 404;
  switch (error.kind) {
    case 'unauthenticated':
      return 401;
    case 'access_denied':
      return 403;
    case 'bad_request':
      return 400;
    case 'limit_exceeded':
      return 429;
    case 'unavailable':
      return 503;
    case 'config':
    case 'internal':
      return 500;
  }
}

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(`${JSON.stringify(body)}\n`);
}

export function sendError(res: ServerResponse, status: number, error: { code: string; message: string }, headers: Record<string, string> = {}): void {
  send(res, status, { error: { code: error.code, message: error.message } }, headers);
}

function tooLarge(): MeshgateError {
  return mgError('MG_PACKET_TOO_LARGE', `the request body is larger than ${MAX_ADMIN_BODY_BYTES} bytes; the admin API takes small JSON objects only`);
}

/** Reads the body, refusing it as soon as it passes the limit (the connection closes after the answer). */
export function readBody(req: IncomingMessage): Promise<string> {
  if (Number(req.headers['content-length'] ?? '0') > MAX_ADMIN_BODY_BYTES) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_ADMIN_BODY_BYTES) {
        req.pause();
        req.removeAllListeners('data');
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A JSON object body (an empty body is `{}`); anything else is MG_USAGE naming the route's shape. */
export async function readJsonObject(req: IncomingMessage, shape: string): Promise<Record<string, unknown>> {
  const text = await readBody(req);
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw mgError('MG_USAGE', `the body is not JSON; send ${shape} with content-type application/json`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw mgError('MG_USAGE', `the body must be a JSON object: ${shape}`);
  }
  return value as Record<string, unknown>;
}

/** An optional string field; a present field of another type is MG_USAGE. */
export function stringField(body: Record<string, unknown>, name: string, shape: string): string | undefined {
  const value = Object.hasOwn(body, name) ? body[name] : undefined;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') throw mgError('MG_USAGE', `"${name}" must be a non-empty string; send ${shape}`);
  if (value.length > 4096) throw mgError('MG_USAGE', `"${name}" is longer than 4096 characters`);
  return value;
}
