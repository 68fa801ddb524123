/**
 * meshgate's built-in CA, for environments without Istio or SPIRE: one self-signed ECDSA
 * P-256 root per trust domain, which issues short-lived SVIDs (see ca-issue.ts). The root is
 * itself an SVID of the trust domain (URI SAN `spiffe://<td>`, no path), as the SPIFFE spec
 * asks of a signing authority.
 */
import { isMeshgateError, mgError } from '../errors/index.ts';
import { caPaths, ensureDir, exists, writeFileAtomic, type CaMetadata } from './ca-store.ts';
import { CLOCK_SKEW_SECONDS } from './ca-issue.ts';
import { parseTrustDomain, trustDomainId } from './spiffe.ts';
import { generateKeyPair, privateKeyToPem, randomSerialHex, SIGNING_ALGORITHM, x509 } from './x509.ts';

export { issueServerCert, issueSvid, describeLifetime } from './ca-issue.ts';
export type { IssuedCertificate, IssueServerCertOptions, IssueSvidOptions } from './ca-issue.ts';
export { loadCa, CA_FILES } from './ca-store.ts';
export type { CaMetadata, LoadedCa } from './ca-store.ts';

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
  const notBefore = new Date(now.getTime() - CLOCK_SKEW_SECONDS * 1000);
  const notAfter = new Date(now.getTime() + Math.round(ttlDays * 86_400) * 1000);
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: [{ O: ['meshgate'] }, { CN: [`meshgate CA ${trustDomain}`] }],
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
  const certPem = cert.toString('pem');
  const metadata: CaMetadata = {
    version: 1,
    trustDomain,
    created: now.toISOString(),
    notAfter: cert.notAfter.toISOString(),
  };

  await ensureDir(options.dir, 0o700);
  // Key first: a crash part-way leaves a key without a certificate, which loadCa reports,
  // never a certificate whose key is lost.
  await writeFileAtomic(paths.key, await privateKeyToPem(keys.privateKey), { secret: true });
  await writeFileAtomic(paths.cert, certPem, { secret: false });
  await writeFileAtomic(paths.bundle, certPem, { secret: false });
  await writeFileAtomic(paths.metadata, `${JSON.stringify(metadata, null, 2)}\n`, { secret: false });
  return {
    dir: options.dir,
    trustDomain,
    certPath: paths.cert,
    keyPath: paths.key,
    bundlePath: paths.bundle,
    metadataPath: paths.metadata,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}
