/**
 * Issuing from the built-in CA: short-lived X.509-SVIDs for workloads, and the certificate
 * meshgate's own listener presents.
 * X.509-SVID profile: https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md
 */
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { isMeshgateError, mgError } from '../errors/index.ts';
import { withCaLock } from './ca-lock.ts';
import { withIssuance } from './ca-records.ts';
import { CA_FILES, caPaths, ensureDir, exists, loadCa, missing, writeFileAtomic, writeMetadata, type LoadedCa } from './ca-store.ts';
import { formatDuration } from './duration.ts';
import { parseSpiffeId } from './spiffe.ts';
import { certificatePem, generateKeyPair, privateKeyToPem, randomSerialHex, SIGNING_ALGORITHM, x509 } from './x509.ts';

/** Tolerates clients and servers whose clocks run a little behind the CA's. */
export const CLOCK_SKEW_SECONDS = 60;
/** Four hours: short enough that a leaked SVID soon stops working, long enough to ride out a renewal outage. */
export const DEFAULT_SVID_TTL_SECONDS = 4 * 3600;
export const DEFAULT_SERVER_TTL_SECONDS = 90 * 86_400;
export const DEFAULT_SERVER_DNS_NAMES: readonly string[] = ['localhost'];
export const DEFAULT_SERVER_IP_ADDRESSES: readonly string[] = ['127.0.0.1', '::1'];

export interface IssueSvidOptions {
  readonly caDir: string;
  readonly spiffeId: string;
  /** Default four hours: SVIDs are meant to be renewed, not kept. */
  readonly ttlSeconds?: number;
  readonly outDir: string;
  /** Base name of the written files: `<name>.crt`, `<name>.key`. Default `svid`. */
  readonly name?: string;
  readonly now?: Date;
}

export interface IssueServerCertOptions {
  readonly caDir: string;
  /** When neither dnsNames nor ipAddresses is given: localhost, 127.0.0.1 and ::1. */
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly spiffeId?: string;
  /** Default 90 days. */
  readonly ttlSeconds?: number;
  readonly outDir: string;
  /** Default `server`. */
  readonly name?: string;
  readonly now?: Date;
}

export interface IssuedCertificate {
  readonly certPath: string;
  readonly keyPath: string;
  readonly bundlePath: string;
  /** Upper-case hex, the form node:crypto's X509Certificate reports. */
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** True when the CA's own expiry cut the requested lifetime short. */
  readonly clampedToCa: boolean;
  /** The SANs written, e.g. `URI:spiffe://td/ns/a/sa/b`, `DNS:localhost`, `IP:::1`. */
  readonly subjectAltNames: readonly string[];
}

interface LeafProfile {
  readonly subject: x509.JsonName;
  readonly names: readonly x509.JsonGeneralName[];
  readonly ttlSeconds: number;
  readonly now: Date;
}

const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

function checkTtl(ttlSeconds: number): void {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) throw new TypeError('ttlSeconds must be a positive integer');
}

/** Parses an ID given to the CA and insists it belongs to the CA's trust domain. */
function spiffeIdForCa(ca: LoadedCa, spiffeId: string): string {
  let id;
  try {
    id = parseSpiffeId(spiffeId);
  } catch (error) {
    if (!isMeshgateError(error)) throw error;
    throw mgError('MG_USAGE', `--spiffe-id: ${error.message}`, error);
  }
  if (id.trustDomain !== ca.metadata.trustDomain) {
    throw mgError(
      'MG_USAGE',
      `${id.uri} is in trust domain "${id.trustDomain}", but the CA in ${ca.dir} signs for "${ca.metadata.trustDomain}" only; use spiffe://${ca.metadata.trustDomain}/...`,
    );
  }
  if (id.path === '') {
    throw mgError('MG_USAGE', `${id.uri} names the trust domain itself; a workload ID needs a path, e.g. spiffe://${id.trustDomain}/ns/<ns>/sa/<sa>`);
  }
  return id.uri;
}

interface SignedLeaf {
  readonly certPem: string;
  readonly keyPem: string;
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly clampedToCa: boolean;
}

async function signLeaf(ca: LoadedCa, profile: LeafProfile): Promise<SignedLeaf> {
  const now = profile.now;
  if (now.getTime() < ca.cert.notBefore.getTime() || now.getTime() >= ca.cert.notAfter.getTime()) {
    throw mgError(
      'MG_CONFIG_INVALID',
      `the CA in ${ca.dir} is valid from ${ca.cert.notBefore.toISOString()} to ${ca.cert.notAfter.toISOString()}, not at ${now.toISOString()}; create a new one with \`meshgate ca init --force\``,
    );
  }
  const notBefore = new Date(now.getTime() - CLOCK_SKEW_SECONDS * 1000);
  const wanted = new Date(now.getTime() + profile.ttlSeconds * 1000);
  // A leaf that outlives its CA would fail verification anyway; better to say so up front.
  const clampedToCa = wanted.getTime() > ca.cert.notAfter.getTime();
  const notAfter = clampedToCa ? ca.cert.notAfter : wanted;

  const keys = await generateKeyPair();
  const caKeyId = ca.cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const authorityKeyId = caKeyId !== null
    ? new x509.AuthorityKeyIdentifierExtension(caKeyId.keyId)
    : await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey);
  const emptySubject = profile.subject.length === 0;
  const serialHex = randomSerialHex();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialHex,
    // With no subject, @peculiar/x509 writes an empty RDNSequence, as Istio's SVIDs have.
    ...(emptySubject ? {} : { subject: profile.subject }),
    issuer: ca.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      // RFC 5280 4.2.1.6: with an empty subject the SAN carries the identity and must be critical.
      new x509.SubjectAlternativeNameExtension([...profile.names], emptySubject),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      authorityKeyId,
    ],
  });
  return {
    certPem: certificatePem(cert),
    keyPem: await privateKeyToPem(keys.privateKey),
    serialNumber: serialHex.toUpperCase(),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    clampedToCa,
  };
}

function sanLabel(name: x509.JsonGeneralName): string {
  return `${name.type === 'url' ? 'URI' : name.type === 'ip' ? 'IP' : 'DNS'}:${name.value}`;
}

/**
 * Signs under the CA lock and records the certificate's notAfter in ca.json before any file
 * is written: a certificate that exists is always one rotation knows to wait for.
 */
async function issueFromCa(
  caDir: string,
  outDir: string,
  name: string,
  profileFor: (ca: LoadedCa) => LeafProfile,
): Promise<IssuedCertificate> {
  if (!FILE_NAME.test(name)) {
    throw mgError('MG_USAGE', `--name ${JSON.stringify(name)} must be a plain file name (letters, digits, '.', '-', '_')`);
  }
  const certPath = join(outDir, `${name}.crt`);
  const keyPath = join(outDir, `${name}.key`);
  const bundlePath = join(outDir, CA_FILES.bundle);
  const caFiles = new Set(Object.values(caPaths(caDir)).map((p) => resolve(p)));
  if (caFiles.has(resolve(certPath)) || caFiles.has(resolve(keyPath))) {
    throw mgError('MG_USAGE', `--name ${JSON.stringify(name)} would overwrite the CA's own files in ${caDir}; pick another name or --out`);
  }
  if (!(await exists(caDir))) throw missing(caDir, 'the directory does not exist');
  const { profile, issued, bundlePem } = await withCaLock(caDir, async () => {
    const ca = await loadCa(caDir);
    const leafProfile = profileFor(ca);
    const leaf = await signLeaf(ca, leafProfile);
    await writeMetadata(caDir, withIssuance(ca.metadata, ca.certPem, leaf.notAfter, leafProfile.now));
    return { profile: leafProfile, issued: leaf, bundlePem: ca.bundlePem };
  });
  await ensureDir(outDir, 0o700);
  await writeFileAtomic(keyPath, issued.keyPem, { secret: true });
  await writeFileAtomic(certPath, issued.certPem, { secret: false });
  // The bundle as read under the lock, written atomically: a workload reloading it never
  // sees half a file, and it always trusts the root that signed the certificate beside it.
  if (resolve(bundlePath) !== resolve(caPaths(caDir).bundle)) await writeFileAtomic(bundlePath, bundlePem, { secret: false });
  return {
    certPath,
    keyPath,
    bundlePath,
    serialNumber: issued.serialNumber,
    notBefore: issued.notBefore,
    notAfter: issued.notAfter,
    clampedToCa: issued.clampedToCa,
    subjectAltNames: profile.names.map(sanLabel),
  };
}

/** Issues an X.509-SVID: empty subject, one URI SAN, usable as TLS client and server. */
export async function issueSvid(options: IssueSvidOptions): Promise<IssuedCertificate> {
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_SVID_TTL_SECONDS;
  checkTtl(ttlSeconds);
  const now = options.now ?? new Date();
  return issueFromCa(options.caDir, options.outDir, options.name ?? 'svid', (ca) => ({
    subject: [],
    names: [{ type: 'url', value: spiffeIdForCa(ca, options.spiffeId) }],
    ttlSeconds,
    now,
  }));
}

/** Issues the certificate meshgate's listener presents: DNS/IP SANs plus an optional SPIFFE ID. */
export async function issueServerCert(options: IssueServerCertOptions): Promise<IssuedCertificate> {
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_SERVER_TTL_SECONDS;
  checkTtl(ttlSeconds);
  const defaults = options.dnsNames === undefined && options.ipAddresses === undefined;
  const dnsNames = defaults ? DEFAULT_SERVER_DNS_NAMES : (options.dnsNames ?? []);
  const ipAddresses = defaults ? DEFAULT_SERVER_IP_ADDRESSES : (options.ipAddresses ?? []);
  for (const dns of dnsNames) {
    if (!/^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/.test(dns)) {
      throw mgError('MG_USAGE', `--dns ${JSON.stringify(dns)} is not a DNS name`);
    }
  }
  for (const ip of ipAddresses) {
    if (isIP(ip) === 0) throw mgError('MG_USAGE', `--ip ${JSON.stringify(ip)} is not an IPv4 or IPv6 address`);
  }
  if (dnsNames.length === 0 && ipAddresses.length === 0) {
    throw mgError('MG_USAGE', 'a server certificate needs at least one --dns name or --ip address');
  }
  const commonName = dnsNames[0] ?? ipAddresses[0] ?? 'meshgate';
  const now = options.now ?? new Date();
  return issueFromCa(options.caDir, options.outDir, options.name ?? 'server', (ca): LeafProfile => {
    const names: x509.JsonGeneralName[] = [
      ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
      ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
    ];
    if (options.spiffeId !== undefined) names.push({ type: 'url', value: spiffeIdForCa(ca, options.spiffeId) });
    return { subject: [{ O: ['meshgate'] }, { CN: [commonName] }], names, ttlSeconds, now };
  });
}

/** For CLI output: `1h`, and a note when the CA's expiry shortened it. */
export function describeLifetime(issued: IssuedCertificate): string {
  const seconds = Math.round((issued.notAfter.getTime() - issued.notBefore.getTime()) / 1000) - CLOCK_SKEW_SECONDS;
  const note = issued.clampedToCa ? ' (cut short: the CA expires then)' : '';
  return `${formatDuration(Math.max(seconds, 0))}${note}`;
}
