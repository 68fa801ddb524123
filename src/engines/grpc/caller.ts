/**
 * Who is calling an HTTP/2 (gRPC) listener, from plain facts about the request; no sockets.
 *
 * Three ways in, tried in this order:
 *  1. `x-forwarded-client-cert` from a configured trusted hop: the local Istio sidecar
 *     terminated the caller's mTLS and vouches for it. From any other address the header
 *     is the caller's own claim: ignored, stripped before anything else sees it, and noted
 *     so the audit event says so.
 *  2. The client certificate of meshgate's own TLS (an SVID).
 *  3. `authorization: Bearer <JWT>`, for callers without a certificate; never in clear text
 *     from an untrusted hop, where anyone on the path could lift it.
 */
import { asMeshgateError, mgError, type MeshgateError } from '../../errors/index.ts';
import { identityFromXfcc, isTrustedHop } from '../../identity/xfcc.ts';
import type { Identity, TlsPeerFacts } from '../../identity/types.ts';

export interface CallerFacts {
  readonly remoteAddress: string;
  /** Null on a plaintext (h2c) listener, which only a local sidecar should reach. */
  readonly tls: TlsPeerFacts | null;
  readonly xfcc: string | undefined;
  readonly authorization: string | undefined;
}

export interface CallerOptions {
  readonly trustedHops: readonly string[];
  readonly trustDomains: readonly string[];
  verifyPeer(facts: TlsPeerFacts): Identity;
  readonly verifyToken?: (token: string) => Promise<Identity>;
}

/** What happened to an `x-forwarded-client-cert` header; recorded in the audit event. */
export interface XfccNote {
  /** True when the header came from an untrusted hop and was dropped unread. */
  readonly stripped: boolean;
  readonly reason: string;
}

export type CallerVerdict =
  | { readonly identity: Identity; readonly error: null; readonly xfcc: XfccNote | null }
  | { readonly identity: null; readonly error: MeshgateError; readonly xfcc: XfccNote | null };

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

export async function resolveCaller(facts: CallerFacts, options: CallerOptions): Promise<CallerVerdict> {
  let xfcc: XfccNote | null = null;
  try {
    const fromSidecar = identityFromXfcc(facts.xfcc, { remoteAddress: facts.remoteAddress }, options);
    if (facts.xfcc !== undefined) xfcc = { stripped: fromSidecar.stripped, reason: fromSidecar.reason };
    if (fromSidecar.identity !== null) return { identity: fromSidecar.identity, error: null, xfcc };
  } catch (error) {
    // A trusted hop that sends a header we cannot read is a misconfigured sidecar: refuse,
    // rather than fall back to weaker evidence.
    return { identity: null, error: asMeshgateError(error), xfcc: { stripped: false, reason: 'x-forwarded-client-cert from a trusted hop was refused' } };
  }
  if (facts.tls?.peerCertificate != null) {
    try {
      return { identity: options.verifyPeer(facts.tls), error: null, xfcc };
    } catch (error) {
      return { identity: null, error: asMeshgateError(error), xfcc };
    }
  }
  const bearer = facts.authorization === undefined ? null : BEARER.exec(facts.authorization)?.[1] ?? null;
  if (bearer !== null && options.verifyToken !== undefined) {
    if (facts.tls === null && !isTrustedHop(facts.remoteAddress, options.trustedHops)) {
      return {
        identity: null,
        error: mgError('MG_TLS_REQUIRED', 'a bearer token must not travel in clear text: connect with TLS, or through the local Istio sidecar'),
        xfcc,
      };
    }
    try {
      return { identity: await options.verifyToken(bearer), error: null, xfcc };
    } catch (error) {
      return { identity: null, error: asMeshgateError(error), xfcc };
    }
  }
  const spoofNote = xfcc?.stripped === true ? ` (${xfcc.reason})` : '';
  return {
    identity: null,
    error: mgError(
      'MG_CLIENT_CERT_MISSING',
      `no identity: present a client certificate (SVID)${options.verifyToken === undefined ? '' : ', send authorization: Bearer <JWT>'}, or call through the local Istio sidecar${spoofNote}`,
    ),
    xfcc,
  };
}
