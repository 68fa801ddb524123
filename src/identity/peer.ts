/**
 * Turns what the TLS layer learned about a client into an Identity, or into an error the
 * client can act on. Pure: the listener does the handshake (requestCert on,
 * rejectUnauthorized off, ca = trust bundle) and passes the facts here, so every refusal is
 * explained in the client's own protocol instead of as a dropped connection.
 *
 * X.509-SVID rules applied: https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md
 */
import type { X509Certificate } from 'node:crypto';
import { isMeshgateError, mgError, type MeshgateError } from '../errors/index.ts';
import { uriSansOf } from './san.ts';
import { parseSpiffeId, principalOf } from './spiffe.ts';
import type { Identity, PeerVerificationOptions, SpiffeId, TlsPeerFacts } from './types.ts';

/** OpenSSL verify codes (as Node reports them) in words a client operator can act on. */
const CHAIN_REASONS: Readonly<Record<string, string>> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'it is self-signed, and it is not a trusted root',
  SELF_SIGNED_CERT_IN_CHAIN: 'its chain ends in a self-signed root that is not in the trust bundle',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its issuer is not in the trust bundle, so its signature cannot be checked',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'its issuing CA is not in the trust bundle',
  UNABLE_TO_GET_ISSUER_CERT: 'its issuing CA is not in the trust bundle',
  CERT_SIGNATURE_FAILURE: 'its signature does not verify against the issuing CA',
  CERT_CHAIN_TOO_LONG: 'its chain is longer than allowed',
  INVALID_CA: 'a certificate in its chain is not allowed to act as a CA',
  PATH_LENGTH_EXCEEDED: "its chain exceeds a CA's path length limit",
  INVALID_PURPOSE: 'it is not allowed for TLS client authentication (check extendedKeyUsage clientAuth)',
  CERT_UNTRUSTED: 'the trust bundle does not trust it for this purpose',
  CERT_REJECTED: 'the trust bundle explicitly rejects it',
  CERT_REVOKED: 'it has been revoked',
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: "its issuer's public key cannot be read",
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: 'its signature cannot be read',
  ERROR_IN_CERT_NOT_BEFORE_FIELD: 'its notBefore date is malformed',
  ERROR_IN_CERT_NOT_AFTER_FIELD: 'its notAfter date is malformed',
};

const RENEW_HINT = 'issue a fresh one with `meshgate ca issue --spiffe-id <id>` (or from your mesh CA)';

function validity(cert: X509Certificate): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
    throw mgError('MG_CLIENT_CERT_UNTRUSTED', 'the client certificate has validity dates meshgate cannot read');
  }
  return { notBefore, notAfter };
}

function expired(notAfter: Date, now: Date): MeshgateError {
  return mgError(
    'MG_CLIENT_CERT_EXPIRED',
    `the client certificate expired at ${notAfter.toISOString()} (now ${now.toISOString()}); ${RENEW_HINT}`,
  );
}

function notYetValid(notBefore: Date, now: Date): MeshgateError {
  return mgError(
    'MG_CLIENT_CERT_NOT_YET_VALID',
    `the client certificate is not valid until ${notBefore.toISOString()} (now ${now.toISOString()}); check the clock on the client, the CA and meshgate`,
  );
}

function chainError(code: string | null, notBefore: Date, notAfter: Date, now: Date): MeshgateError {
  if (code === 'CERT_HAS_EXPIRED') {
    if (notAfter.getTime() < now.getTime()) return expired(notAfter, now);
    // The leaf is in date, so it is the issuing CA (or a root in the bundle) that expired.
    return mgError(
      'MG_CLIENT_CERT_EXPIRED',
      `a CA certificate in the client certificate's chain has expired (the client certificate itself is valid until ${notAfter.toISOString()}); renew the CA and the trust bundle, then ${RENEW_HINT}`,
    );
  }
  if (code === 'CERT_NOT_YET_VALID') {
    if (notBefore.getTime() > now.getTime()) return notYetValid(notBefore, now);
    return mgError(
      'MG_CLIENT_CERT_NOT_YET_VALID',
      "a CA certificate in the client certificate's chain is not valid yet; check the clocks of the client, the CA and meshgate",
    );
  }
  const reason = code === null ? undefined : CHAIN_REASONS[code];
  const words = reason ?? (code === null ? 'the TLS layer gave no reason' : 'OpenSSL rejected its chain');
  const suffix = code === null ? '' : ` (${code})`;
  return mgError(
    'MG_CLIENT_CERT_UNTRUSTED',
    `the client certificate is not trusted: ${words}${suffix}; it must be issued by a CA in meshgate's trust bundle`,
  );
}

function soleSpiffeId(cert: X509Certificate): SpiffeId {
  let uris: string[];
  try {
    uris = uriSansOf(cert.subjectAltName);
  } catch (error) {
    throw mgError('MG_SPIFFE_ID_INVALID', 'the client certificate has a subjectAltName meshgate cannot read', error);
  }
  if (uris.length !== 1) {
    throw mgError(
      'MG_SPIFFE_ID_INVALID',
      `the client certificate must carry exactly one URI SAN (its SPIFFE ID), and it carries ${uris.length}`,
    );
  }
  try {
    return parseSpiffeId(uris[0] as string);
  } catch (error) {
    if (!isMeshgateError(error)) throw error;
    throw mgError('MG_SPIFFE_ID_INVALID', `the client certificate's URI SAN: ${error.message}`, error);
  }
}

/**
 * Verifies a TLS client against the X.509-SVID rules and the trusted trust domains.
 * Checks, in order: a certificate was presented; its chain verified; it is in date at
 * `options.now` (checked again here so an injected clock and Node's verdict agree); it is not
 * a CA; it carries exactly one URI SAN that is a valid SPIFFE ID; its trust domain is trusted.
 */
export function verifyTlsPeer(facts: TlsPeerFacts, options: PeerVerificationOptions): Identity {
  const cert = facts.peerCertificate;
  if (cert === null) {
    throw mgError(
      'MG_CLIENT_CERT_MISSING',
      'meshgate requires a client certificate; present a client certificate: --ssl-cert/--ssl-key (mariadb CLI) or ssl.cert/ssl.key (drivers)',
    );
  }
  const now = options.now ?? new Date();
  const { notBefore, notAfter } = validity(cert);
  if (!facts.authorized) throw chainError(facts.authorizationError, notBefore, notAfter, now);
  if (now.getTime() < notBefore.getTime()) throw notYetValid(notBefore, now);
  if (now.getTime() > notAfter.getTime()) throw expired(notAfter, now);

  if (cert.ca) {
    throw mgError(
      'MG_SPIFFE_ID_INVALID',
      'the client certificate is a CA certificate (basicConstraints CA:TRUE); present a workload certificate (an X.509-SVID), not the CA',
    );
  }
  const id = soleSpiffeId(cert);
  if (!options.trustDomains.includes(id.trustDomain)) {
    const configured =
      options.trustDomains.length === 0 ? 'none are configured' : `trusted: ${options.trustDomains.join(', ')}`;
    throw mgError(
      'MG_TRUST_DOMAIN_UNTRUSTED',
      `the trust domain ${JSON.stringify(id.trustDomain)} of ${id.uri} is not trusted by meshgate (${configured})`,
    );
  }
  return {
    spiffeId: id.uri,
    trustDomain: id.trustDomain,
    namespace: id.namespace,
    serviceAccount: id.serviceAccount,
    principal: principalOf(id),
    authMethod: 'mtls',
    certificate: {
      serialNumber: cert.serialNumber,
      notBefore: notBefore.toISOString(),
      notAfter: notAfter.toISOString(),
      fingerprint256: cert.fingerprint256,
    },
  };
}
