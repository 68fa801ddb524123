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
  readonly authMethod: 'mtls';
  readonly certificate: {
    readonly serialNumber: string;
    readonly notBefore: string;
    readonly notAfter: string;
    readonly fingerprint256: string;
  };
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
