/**
 * meshgate's built-in CA, for environments without Istio or SPIRE: one self-signed ECDSA
 * P-256 root per trust domain, which issues short-lived SVIDs (see ca-issue.ts). The root is
 * itself an SVID of the trust domain (URI SAN `spiffe://<td>`, no path), as the SPIFFE spec
 * asks of a signing authority.
 */
import { isMeshgateError, mgError } from '../errors/index.ts';
import { withCaLock } from './ca-lock.ts';
import { rootRecord, type CaMetadata } from './ca-records.ts';
import { caPaths, ensureDir, exists, writeFileAtomic, writeMetadata } from './ca-store.ts';
import { CLOCK_SKEW_SECONDS } from './ca-issue.ts';
import { parseTrustDomain, trustDomainId } from './spiffe.ts';
import { certificatePem, generateKeyPair, privateKeyToPem, randomSerialHex, SIGNING_ALGORITHM, x509 } from './x509.ts';

export { issueServerCert, issueSvid, describeLifetime } from './ca-issue.ts';
export type { IssuedCertificate, IssueServerCertOptions, IssueSvidOptions } from './ca-issue.ts';
export { loadCa, CA_FILES } from './ca-store.ts';
export type { CaMetadata, LoadedCa } from './ca-store.ts';
export type { CaRootRecord } from './ca-records.ts';

export const DEFAULT_CA_TTL_DAYS = 365;

export interface InitCaOptions {
  readonly dir: string;
  readonly trustDomain: string;
  readonly ttlDays?: number;
  /** Replace an existing CA. Every certificate it issued stops verifying against the new bundle. */
  readonly force?: boolean;
  readonly now?: Date;
}

export interface InitCaResult {
  readonly dir: string;
  readonly trustDomain: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly bundlePath: string;
  readonly metadataPath: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Creates the CA's key, root certificate, trust bundle and metadata in `dir`. */
export async function initCa(options: InitCaOptions): Promise<InitCaResult> {
  const ttlDays = options.ttlDays ?? DEFAULT_CA_TTL_DAYS;
  if (!Number.isFinite(ttlDays) || ttlDays <= 0) throw new TypeError('ttlDays must be a positive number');
  let trustDomain: string;
  try {
    trustDomain = parseTrustDomain(options.trustDomain);
  } catch (error) {
    if (!isMeshgateError(error)) throw error;
    throw mgError('MG_USAGE', `--trust-domain: ${error.message}`, error);
  }
  const paths = caPaths(options.dir);
  if (options.force !== true && (await exists(paths.key))) {
    throw mgError(
      'MG_CA_EXISTS',
      `a CA already exists in ${options.dir} (${paths.key}); use it, or pass --force to replace it (certificates it issued will stop verifying)`,
    );
  }

  const now = options.now ?? new Date();
  const root = await createRoot(trustDomain, ttlDays, now, `meshgate CA ${trustDomain}`);
  const metadata: CaMetadata = {
    version: 2,
    trustDomain,
    created: now.toISOString(),
    notAfter: root.cert.notAfter.toISOString(),
    roots: [rootRecord(root.certPem, now, true)],
  };

  await ensureDir(options.dir, 0o700);
  await withCaLock(options.dir, async () => {
    // Key first: a crash part-way leaves a key without its certificate, which loadCa
    // reports, never a certificate whose key is lost.
    await writeFileAtomic(paths.key, root.keyPem, { secret: true });
    await writeFileAtomic(paths.cert, root.certPem, { secret: false });
    await writeFileAtomic(paths.bundle, root.certPem, { secret: false });
    await writeMetadata(options.dir, metadata);
  });
  return {
    dir: options.dir,
    trustDomain,
    certPath: paths.cert,
    keyPath: paths.key,
    bundlePath: paths.bundle,
    metadataPath: paths.metadata,
    notBefore: root.cert.notBefore,
    notAfter: root.cert.notAfter,
  };
}

export interface CreatedRoot {
  readonly cert: x509.X509Certificate;
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * A self-signed root for `trustDomain`. Rotated roots get a distinct common name: verifiers
 * look issuers up by subject first, and some (older Java, some proxies) stop at the first
 * match instead of also comparing key identifiers.
 */
export async function createRoot(trustDomain: string, ttlDays: number, now: Date, commonName: string): Promise<CreatedRoot> {
  const notBefore = new Date(now.getTime() - CLOCK_SKEW_SECONDS * 1000);
  const notAfter = new Date(now.getTime() + Math.round(ttlDays * 86_400) * 1000);
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: [{ O: ['meshgate'] }, { CN: [commonName] }],
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      // pathLength 0: this root signs workload certificates only, never another CA.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: trustDomainId(trustDomain) }]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, certPem: certificatePem(cert), keyPem: await privateKeyToPem(keys.privateKey) };
}
