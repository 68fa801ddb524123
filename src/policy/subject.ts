/**
 * A Subject from a principal typed by a person (`policy explain --principal`, policy tests).
 * Deliberately minimal and independent of src/identity: it accepts what an operator would
 * paste, either `spiffe://td/ns/N/sa/S` or Istio's `td/ns/N/sa/S`, and nothing cleverer.
 */
import { mgError } from '../errors/index.ts';
import type { Subject } from './types.ts';

const SCHEME = 'spiffe://';
// SPIFFE ID spec: trust domains are lower-case; path segments use the unreserved set.
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;
const MAX_LENGTH = 2048;

export function subjectFromPrincipal(text: string): Subject {
  const body = text.startsWith(SCHEME) ? text.slice(SCHEME.length) : text;
  const invalid = (why: string) =>
    mgError(
      'MG_SPIFFE_ID_INVALID',
      `${JSON.stringify(text.length > 100 ? `${text.slice(0, 97)}...` : text)} is not a SPIFFE ID or Istio principal: ${why} ` +
        '(expected spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>)',
    );
  if (text.length > MAX_LENGTH) throw invalid(`longer than ${MAX_LENGTH} characters`);
  const [trustDomain = '', ...segments] = body.split('/');
  if (!TRUST_DOMAIN.test(trustDomain)) throw invalid('the trust domain must be lower-case letters, digits, ".", "-" or "_"');
  if (segments.length === 0 || (segments.length === 1 && segments[0] === '')) throw invalid('it has no path');
  for (const segment of segments) {
    if (!SEGMENT.test(segment) || segment === '.' || segment === '..') {
      throw invalid(`path segment ${JSON.stringify(segment)} is empty or has characters outside A-Z a-z 0-9 . - _`);
    }
  }
  const istio = segments.length === 4 && segments[0] === 'ns' && segments[2] === 'sa';
  const principal = `${trustDomain}/${segments.join('/')}`;
  return Object.freeze({
    spiffeId: `${SCHEME}${principal}`,
    trustDomain,
    namespace: istio ? segments[1]! : null,
    serviceAccount: istio ? segments[3]! : null,
    principal,
  });
}
