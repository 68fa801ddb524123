/**
 * SPIFFE IDs, parsed strictly.
 * Spec: https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md
 *
 * Strict on purpose: policy matches principals as strings, so two spellings of one identity
 * (upper-case host, `%2F`, `/./`, a trailing slash) must never both be accepted. Anything the
 * spec does not allow is rejected rather than normalised.
 */
import { mgError, type MeshgateError } from '../errors/index.ts';
import type { SpiffeId } from './types.ts';

export const SPIFFE_SCHEME_PREFIX = 'spiffe://';
/** The spec's interoperability limit for a whole SPIFFE ID (it allows only ASCII). */
export const SPIFFE_ID_MAX_BYTES = 2048;
/** RFC 3986 limits the host component, and so the trust domain, to 255 bytes. */
export const TRUST_DOMAIN_MAX_BYTES = 255;

const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]$/;
const PATH_SEGMENT_CHAR = /^[A-Za-z0-9._-]$/;

/** Quotes a caller-supplied value for an error message and keeps messages bounded. */
function show(value: string): string {
  const cut = value.length > 80 ? `${value.slice(0, 80)}…` : value;
  return JSON.stringify(cut);
}

function invalid(input: string, problem: string): MeshgateError {
  return mgError('MG_SPIFFE_ID_INVALID', `${show(input)} is not a valid SPIFFE ID: ${problem}`);
}

function trustDomainProblem(name: string): string | null {
  if (name === '') return 'the trust domain is empty';
  if (Buffer.byteLength(name, 'utf8') > TRUST_DOMAIN_MAX_BYTES) {
    return `the trust domain is longer than ${TRUST_DOMAIN_MAX_BYTES} bytes`;
  }
  for (const [i, ch] of [...name].entries()) {
    if (TRUST_DOMAIN_CHAR.test(ch)) continue;
    if (/^[A-Z]$/.test(ch)) return `the trust domain must be lower case (found ${show(ch)} at position ${i})`;
    return `the trust domain may contain only a-z, 0-9, '.', '-' and '_' (found ${show(ch)} at position ${i})`;
  }
  return null;
}

/**
 * Validates a bare trust domain name (`example.org`, no scheme) and returns it. Used where a
 * trust domain is configured on its own, e.g. `ca init --trust-domain`.
 */
export function parseTrustDomain(name: string): string {
  if (typeof name !== 'string') throw new TypeError('parseTrustDomain expects a string');
  if (name.startsWith(SPIFFE_SCHEME_PREFIX)) {
    throw mgError(
      'MG_SPIFFE_ID_INVALID',
      `${show(name)} is not a trust domain name: give it without the scheme, e.g. ${show(name.slice(SPIFFE_SCHEME_PREFIX.length))}`,
    );
  }
  const problem = trustDomainProblem(name);
  if (problem !== null) throw mgError('MG_SPIFFE_ID_INVALID', `${show(name)} is not a valid trust domain name: ${problem}`);
  return name;
}

function pathProblem(path: string): string | null {
  // `path` still carries its leading '/'; an empty path is the trust domain's own ID.
  if (path === '') return null;
  const segments = path.slice(1).split('/');
  for (const [index, segment] of segments.entries()) {
    const which = `path segment ${index + 1}`;
    if (segment === '') {
      return index === segments.length - 1 ? 'the path must not end with "/"' : `${which} is empty ("//")`;
    }
    if (segment === '.' || segment === '..') return `${which} is ${show(segment)}; dot segments are not allowed`;
    for (const ch of segment) {
      if (PATH_SEGMENT_CHAR.test(ch)) continue;
      if (ch === '%') return `${which} contains '%'; percent-encoding is not allowed`;
      return `${which} may contain only A-Z, a-z, 0-9, '.', '-' and '_' (found ${show(ch)})`;
    }
  }
  return null;
}

/** Parses `spiffe://<trust-domain>[/<path>]`; throws MG_SPIFFE_ID_INVALID saying what is wrong. */
export function parseSpiffeId(uri: string): SpiffeId {
  if (typeof uri !== 'string') throw new TypeError('parseSpiffeId expects a string');
  if (uri === '') throw invalid(uri, 'it is empty');
  if (Buffer.byteLength(uri, 'utf8') > SPIFFE_ID_MAX_BYTES) {
    throw invalid(uri, `it is longer than ${SPIFFE_ID_MAX_BYTES} bytes`);
  }
  if (!uri.startsWith(SPIFFE_SCHEME_PREFIX)) {
    if (uri.toLowerCase().startsWith(SPIFFE_SCHEME_PREFIX)) throw invalid(uri, "the scheme must be lower-case 'spiffe'");
    throw invalid(uri, `it must start with ${show(SPIFFE_SCHEME_PREFIX)}`);
  }
  const rest = uri.slice(SPIFFE_SCHEME_PREFIX.length);
  if (rest.includes('?')) throw invalid(uri, 'a query ("?") is not allowed');
  if (rest.includes('#')) throw invalid(uri, 'a fragment ("#") is not allowed');

  const slash = rest.indexOf('/');
  const authority = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (authority.includes('@')) throw invalid(uri, 'userinfo ("user@") is not allowed before the trust domain');
  if (authority.includes(':')) throw invalid(uri, 'a port (":") is not allowed in the trust domain');
  const tdProblem = trustDomainProblem(authority);
  if (tdProblem !== null) throw invalid(uri, tdProblem);
  const problem = pathProblem(path);
  if (problem !== null) throw invalid(uri, problem);

  const segments = path === '' ? [] : path.slice(1).split('/');
  const istio = segments.length === 4 && segments[0] === 'ns' && segments[2] === 'sa';
  return {
    uri,
    trustDomain: authority,
    path: path.slice(1),
    namespace: istio ? (segments[1] ?? null) : null,
    serviceAccount: istio ? (segments[3] ?? null) : null,
  };
}

/** Istio's principal form of an ID: the URI without `spiffe://` (`td/ns/x/sa/y`). */
export function principalOf(id: SpiffeId): string {
  return id.uri.slice(SPIFFE_SCHEME_PREFIX.length);
}

/** Builds the SPIFFE ID of a trust domain's signing authority (no path), as the spec advises. */
export function trustDomainId(trustDomain: string): string {
  return `${SPIFFE_SCHEME_PREFIX}${parseTrustDomain(trustDomain)}`;
}
