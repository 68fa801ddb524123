/**
 * The identity stage every engine shares: a Peer (plain facts a listener learned, no
 * sockets) becomes an Identity or a coded refusal the engine renders in its protocol.
 *
 * Evidence is believed in this order:
 *  1. `x-forwarded-client-cert` from one of the listener's trusted hops: the local Istio
 *     sidecar terminated the caller's mTLS and vouches for it. From any other address the
 *     header is the caller's own claim: ignored, and noted so the audit event says so.
 *  2. The client certificate of meshgate's own TLS (an X.509-SVID).
 *  3. A token (a gRPC `authorization: Bearer`, or a JWT sent as the MySQL password); never
 *     in clear text from an untrusted hop, where anyone on the path could lift it.
 * A failure at a step refuses; it never falls back to weaker evidence.
 */
import { asMeshgateError, mgError, type MeshgateError } from '../errors/index.ts';
import { verifyTlsPeer } from './peer.ts';
import type { Identity, TlsPeerFacts } from './types.ts';
import { identityFromXfcc, isTrustedHop } from './xfcc.ts';

export interface Peer {
  /** Which protocol the peer speaks: refusals say how to present evidence in it. */
  readonly protocol: 'mysql' | 'grpc';
  readonly remoteAddress: string;
  /** Null on a plaintext connection. */
  readonly tls: TlsPeerFacts | null;
  /** Addresses or CIDRs this listener believes `x-forwarded-client-cert` from; none for MySQL. */
  readonly trustedHops: readonly string[];
  readonly xfcc?: string | undefined;
  /** A token the peer sent, with how it came (an empty value still counts: it was offered). */
  readonly token?: { readonly value: string; readonly via: 'bearer' | 'password' } | undefined;
}

/** What happened to an `x-forwarded-client-cert` header; recorded in the audit event. */
export interface XfccNote {
  /** True when the header came from an untrusted hop and was dropped unread. */
  readonly stripped: boolean;
  readonly reason: string;
}

export type Resolution =
  | { readonly identity: Identity; readonly error: null; readonly xfcc: XfccNote | null }
  | { readonly identity: null; readonly error: MeshgateError; readonly xfcc: XfccNote | null };

export interface IdentityResolver {
  /** Whether a token can prove an identity here (some issuer is configured). */
  readonly acceptsTokens: boolean;
  resolve(peer: Peer): Promise<Resolution>;
}

export interface IdentityResolverOptions {
  readonly trustDomains: readonly string[];
  readonly verifyToken?: ((token: string) => Promise<Identity>) | undefined;
  /** Tests freeze the clock; certificates are checked against it. */
  readonly now?: () => Date;
}

/** What a peer that offered no evidence is told, in its protocol's terms. */
function noEvidence(peer: Peer, tokens: boolean): string {
  if (peer.protocol === 'grpc') {
    return `no identity: present a client certificate (SVID)${tokens ? ', send authorization: Bearer <JWT>' : ''}, or call through the local Istio sidecar`;
  }
  return peer.tls === null
    ? 'no TLS client certificate: connect with TLS and present your workload certificate (--ssl-cert/--ssl-key)'
    : 'meshgate requires a client certificate; present a client certificate: --ssl-cert/--ssl-key (mariadb CLI) or ssl.cert/ssl.key (drivers)';
}

const PLAINTEXT_TOKEN: Readonly<Record<'bearer' | 'password', string>> = {
  password: 'a token is accepted as password only over TLS: connect with --ssl (mariadb CLI) or ssl: {} (drivers)',
  bearer: 'a bearer token must not travel in clear text: connect with TLS, or through the local Istio sidecar',
};

export function createIdentityResolver(options: IdentityResolverOptions): IdentityResolver {
  // A listener hands the same facts object for every call on one connection (HTTP/2): the
  // certificate is verified once per connection, again only once it has expired.
  const verified = new WeakMap<TlsPeerFacts, Identity>();
  const verifyCertificate = (facts: TlsPeerFacts): Identity => {
    const known = verified.get(facts);
    const now = options.now?.() ?? new Date();
    if (known !== undefined && Date.parse(known.certificate.notAfter) > now.getTime()) return known;
    const identity = verifyTlsPeer(facts, { trustDomains: options.trustDomains, now });
    verified.set(facts, identity);
    return identity;
  };
  const verifyToken = options.verifyToken;

  return {
    acceptsTokens: verifyToken !== undefined,
    async resolve(peer) {
      let xfcc: XfccNote | null = null;
      try {
        const fromSidecar = identityFromXfcc(peer.xfcc, { remoteAddress: peer.remoteAddress }, { trustedHops: peer.trustedHops, trustDomains: options.trustDomains });
        if (peer.xfcc !== undefined) xfcc = { stripped: fromSidecar.stripped, reason: fromSidecar.reason };
        if (fromSidecar.identity !== null) return { identity: fromSidecar.identity, error: null, xfcc };
      } catch (error) {
        // A trusted hop that sends a header we cannot read is a misconfigured sidecar.
        return { identity: null, error: asMeshgateError(error), xfcc: { stripped: false, reason: 'x-forwarded-client-cert from a trusted hop was refused' } };
      }
      if (peer.tls?.peerCertificate != null) {
        try {
          return { identity: verifyCertificate(peer.tls), error: null, xfcc };
        } catch (error) {
          return { identity: null, error: asMeshgateError(error), xfcc };
        }
      }
      if (peer.token !== undefined && verifyToken !== undefined) {
        if (peer.tls === null && !isTrustedHop(peer.remoteAddress, peer.trustedHops)) {
          return { identity: null, error: mgError('MG_TLS_REQUIRED', PLAINTEXT_TOKEN[peer.token.via]), xfcc };
        }
        try {
          return { identity: await verifyToken(peer.token.value), error: null, xfcc };
        } catch (error) {
          return { identity: null, error: asMeshgateError(error), xfcc };
        }
      }
      const spoofNote = xfcc?.stripped === true ? ` (${xfcc.reason})` : '';
      return { identity: null, error: mgError('MG_CLIENT_CERT_MISSING', noEvidence(peer, verifyToken !== undefined) + spoofNote), xfcc };
    },
  };
}
