import type { X509Certificate } from 'node:crypto';

/** A parsed `spiffe://<trust-domain>/<path>` ID; Istio's form has path `ns/<ns>/sa/<sa>`. */
export interface SpiffeId {
  readonly uri: string;
  readonly trustDomain: string;
  /** Path without the leading slash, e.g. `ns/shop/sa/orders`. */
  readonly path: string;
  /** Set when the path has Istio's `ns/<ns>/sa/<sa>` form. */
  readonly namespace: string | null;
  readonly serviceAccount: string | null;
}

/** Who is calling, as proven by one of the identity mechanisms. */
export interface Identity {
  readonly spiffeId: string;
  readonly trustDomain: string;
  readonly namespace: string | null;
  readonly serviceAccount: string | null;
  /** Istio's principal form: the SPIFFE ID without `spiffe://`. */
  readonly principal: string;
  /** How the caller proved it: a client certificate, a verified JWT, or a trusted sidecar's XFCC header. */
  readonly authMethod: 'mtls' | 'jwt' | 'xfcc';
  /**
   * The credential that proved the identity. For 'mtls', the client certificate. For 'jwt',
   * the token's equivalents, so audit and expiry logic need no second shape: serialNumber is
   * the `jti` (or ''), notBefore the `nbf` (else `iat`, else ''), notAfter the `exp`, and
   * fingerprint256 the SHA-256 of the compact token (never the token itself). For 'xfcc',
   * fingerprint256 from the sidecar's Hash, the other fields only when it forwards Cert (else '').
   */
  readonly certificate: {
    readonly serialNumber: string;
    readonly notBefore: string;
    readonly notAfter: string;
    readonly fingerprint256: string;
  };
  /**
   * Verified token claims that policy may match (e.g. a GitHub `repository`, an OIDC
   * `email`/`groups`); absent for certificate identities.
   */
  readonly claims?: Readonly<Record<string, unknown>>;
}

/**
 * What the TLS layer learned about the peer, as plain values: identity code never sees a
 * socket. `authorized`/`authorizationError` are Node's verdict on the chain against the
 * configured trust bundle (the listener runs with requestCert and rejectUnauthorized off,
 * so that a refusal can be explained to the client in its own protocol).
 */
export interface TlsPeerFacts {
  readonly authorized: boolean;
  /** Node/OpenSSL code such as CERT_HAS_EXPIRED, or null. */
  readonly authorizationError: string | null;
  /** The leaf certificate the peer presented, or null when it presented none. */
  readonly peerCertificate: X509Certificate | null;
  readonly protocol: string | null;
  readonly cipher: string | null;
}

export interface PeerVerificationOptions {
  /** Trust domains whose SPIFFE IDs are accepted (certificates must also chain to a bundle). */
  readonly trustDomains: readonly string[];
  readonly now?: Date;
}
