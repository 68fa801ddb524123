/**
 * The signing endpoint's HTTP plumbing: its status exceptions, body limit and body shape on
 * top of src/transport/http/json.ts. No policy lives here.
 */
import type { IncomingMessage } from 'node:http';
import { mgError, type MeshgateError } from '../../errors/index.ts';
import { readBody, statusOf as httpStatusOf } from '../../transport/http/index.ts';

export const SVID_ROUTE = '/v1/svid';
/** A P-256 CSR is under 1 KiB; 64 KiB is generous yet bounds what a caller can make meshgate buffer. */
export const MAX_REQUEST_BYTES = 64 * 1024;

export function statusOf(error: MeshgateError): number {
  // A CA that cannot sign (missing, expired, damaged) is the operator's to fix; callers retry.
  return httpStatusOf(error, { codes: { MG_TRUST_DOMAIN_UNTRUSTED: 403 }, kinds: { config: 503 } });
}

export function readRequest(req: IncomingMessage): Promise<string> {
  return readBody(req, { limit: MAX_REQUEST_BYTES, tooLargeHint: 'send only { "csr": "<PEM>" }' });
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
