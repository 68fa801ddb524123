/**
 * Signing a workload's own public key with the built-in CA. Unlike issueSvid (ca-issue.ts),
 * the private key never exists here: `meshgate agent` generates it in the workload and sends
 * only a CSR. The certificate follows the same X.509-SVID profile, and the issuance is
 * recorded in ca.json under the CA lock exactly as ca-issue.ts does, so a rotation keeps the
 * old root in bundle.pem until this certificate has expired.
 * X.509-SVID profile: https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md
 */
import { mgError } from '../../errors/index.ts';
import { CLOCK_SKEW_SECONDS, DEFAULT_SVID_TTL_SECONDS } from '../ca-issue.ts';
import { withCaLock } from '../ca-lock.ts';
import { withIssuance } from '../ca-records.ts';
import { exists, loadCa, missing, writeMetadata, type LoadedCa } from '../ca-store.ts';
import { parseSpiffeId } from '../spiffe.ts';
import { certificatePem, randomSerialHex, SIGNING_ALGORITHM, x509, type CryptoKey } from '../x509.ts';

export interface SignSvidForKeyOptions {
  readonly caDir: string;
  /** The workload's public key, e.g. a verified CSR's `publicKey`. */
  readonly publicKey: x509.PublicKey | CryptoKey;
  /** Decided by the caller from a verified identity, never from the CSR. */
  readonly spiffeId: string;
  /** Default DEFAULT_SVID_TTL_SECONDS (four hours). */
  readonly ttlSeconds?: number;
  readonly now?: Date;
  /** How long to wait for the CA lock before MG_CA_BUSY; default ca-lock.ts's. */
  readonly lockTimeoutMs?: number;
  /**
   * Runs under the CA lock after the certificate is signed and recorded, before it is
   * returned; a throw discards the certificate. Join tokens are redeemed here, so a token is
   * used up exactly when a certificate is issued for it, even with concurrent requests.
   */
  readonly underLock?: () => Promise<void>;
}

export interface SignedSvid {
  readonly spiffeId: string;
  /** PEM, ending in a newline. */
  readonly certificatePem: string;
  /** The CA's bundle.pem as read under the lock: it trusts the root that signed the certificate. */
  readonly bundlePem: string;
  /** Upper-case hex, as node:crypto reports it. */
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** True when the CA's own expiry cut the requested lifetime short. */
  readonly clampedToCa: boolean;
}

/** The ID as the CA may sign it: in the CA's trust domain, naming a workload (not the domain). */
function checkedId(ca: LoadedCa, spiffeId: string): string {
  const id = parseSpiffeId(spiffeId);
  if (id.trustDomain !== ca.metadata.trustDomain) {
    throw mgError(
      'MG_TRUST_DOMAIN_UNTRUSTED',
      `${id.uri} is in trust domain ${JSON.stringify(id.trustDomain)}, but this CA signs for ${JSON.stringify(ca.metadata.trustDomain)} only`,
    );
  }
  if (id.path === '') throw mgError('MG_SPIFFE_ID_INVALID', `${id.uri} names the trust domain itself; a workload SVID needs a path`);
  return id.uri;
}

async function buildCertificate(ca: LoadedCa, options: SignSvidForKeyOptions, spiffeId: string, now: Date, ttlSeconds: number) {
  if (now.getTime() < ca.cert.notBefore.getTime() || now.getTime() >= ca.cert.notAfter.getTime()) {
    throw mgError(
      'MG_CONFIG_INVALID',
      `the CA in ${ca.dir} is valid from ${ca.cert.notBefore.toISOString()} to ${ca.cert.notAfter.toISOString()}, not at ${now.toISOString()}; rotate it with \`meshgate ca rotate\``,
    );
  }
  const wanted = new Date(now.getTime() + ttlSeconds * 1000);
  // A leaf that outlives its CA would fail verification anyway.
  const clampedToCa = wanted.getTime() > ca.cert.notAfter.getTime();
  const caKeyId = ca.cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const serialHex = randomSerialHex();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialHex,
    // No subject: an empty RDNSequence, as Istio's SVIDs have; the URI SAN is the identity.
    issuer: ca.cert.subjectName,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_SECONDS * 1000),
    notAfter: clampedToCa ? ca.cert.notAfter : wanted,
    publicKey: options.publicKey,
    signingKey: ca.key,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      // ECDSA keys sign; keyEncipherment (RSA key transport) would not apply to them.
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      // RFC 5280 4.2.1.6: with an empty subject the SAN carries the identity and must be critical.
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true),
      await x509.SubjectKeyIdentifierExtension.create(options.publicKey),
      caKeyId !== null
        ? new x509.AuthorityKeyIdentifierExtension(caKeyId.keyId)
        : await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
    ],
  });
  return { cert, serialNumber: serialHex.toUpperCase(), clampedToCa };
}

/**
 * Signs `publicKey` as an X.509-SVID for `spiffeId`. Throws MG_TRUST_DOMAIN_UNTRUSTED when
 * the ID is not in the CA's trust domain, MG_CA_BUSY when the lock is held too long,
 * MG_CA_MISSING / MG_CONFIG_INVALID when the CA cannot sign.
 */
export async function signSvidForKey(options: SignSvidForKeyOptions): Promise<SignedSvid> {
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_SVID_TTL_SECONDS;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) throw new TypeError('ttlSeconds must be a positive integer');
  const now = options.now ?? new Date();
  // Parsed before the lock is taken: a malformed ID costs no disk access.
  let spiffeId = parseSpiffeId(options.spiffeId).uri;
  if (!(await exists(options.caDir))) throw missing(options.caDir, 'the directory does not exist');
  const lockOptions = options.lockTimeoutMs === undefined ? {} : { timeoutMs: options.lockTimeoutMs };
  return withCaLock(
    options.caDir,
    async () => {
      const ca = await loadCa(options.caDir);
      spiffeId = checkedId(ca, spiffeId);
      const { cert, serialNumber, clampedToCa } = await buildCertificate(ca, options, spiffeId, now, ttlSeconds);
      // Recorded before anyone can hold the certificate: rotation must know to wait for it.
      await writeMetadata(ca.dir, withIssuance(ca.metadata, ca.certPem, cert.notAfter, now));
      await options.underLock?.();
      return {
        spiffeId,
        certificatePem: certificatePem(cert),
        bundlePem: ca.bundlePem,
        serialNumber,
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
        clampedToCa,
      };
    },
    lockOptions,
  );
}
