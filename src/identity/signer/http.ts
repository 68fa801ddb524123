/**
 * The signing endpoint's HTTP plumbing: how errors become statuses, how a body is read
 * within its limit, and what TLS verified about the client. No policy lives here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mgError, type MeshgateError } from '../../errors/index.ts';

export const SVID_ROUTE = '/v1/svid';
/** A P-256 CSR is under 1 KiB; 64 KiB is generous yet bounds what a caller can make meshgate buffer. */
export const MAX_REQUEST_BYTES = 64 * 1024;

export function statusOf(error: MeshgateError): number {
  if (error.code === 'MG_TRUST_DOMAIN_UNTRUSTED') return 403;
  if (error.code === 'MG_PACKET_TOO_LARGE') return 413;
  switch (error.kind) {
    case 'unauthenticated':
      return 401;
    case 'access_denied':
      return 403;
    case 'bad_request':
      return 400;
    case 'limit_exceeded':
      return 429;
    // A CA that cannot sign (missing, expired, damaged) is the operator's to fix; callers retry.
    case 'unavailable':
    case 'config':
      return 503;
    case 'internal':
      return 500;
  }
}


export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(`${JSON.stringify(body)}\n`);
}

/**
 * Reads the body, refusing it as soon as it passes MAX_REQUEST_BYTES. The stream is paused,
 * not destroyed, so the 413 answer can still be written; the connection closes after it.
 */
export function readBody(req: IncomingMessage): Promise<string> {
  const tooLarge = () => mgError('MG_PACKET_TOO_LARGE', `the request body is larger than ${MAX_REQUEST_BYTES} bytes; send only { "csr": "<PEM>" }`);
  if (Number(req.headers['content-length'] ?? '0') > MAX_REQUEST_BYTES) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) {
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

export function csrOf(body: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw mgError('MG_SIGNER_REQUEST_INVALID', 'the body is not JSON; send { "csr": "<PEM PKCS#10>" } with content-type application/json');
  }
  if (typeof value !== 'object' || value === null || !('csr' in value)) {
    throw mgError('MG_SIGNER_REQUEST_INVALID', 'the body has no "csr" field; send { "csr": "<PEM PKCS#10>" }');
  }
  return (value as { csr: unknown }).csr;
}
