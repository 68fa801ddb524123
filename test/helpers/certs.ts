/**
 * Certificates the built-in CA would never issue (CA-flagged leaves, several URI SANs,
 * self-signed leaves), built with @peculiar/x509 directly, plus small fixtures for tests that
 * need a CA on disk.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, privateKeyToPem, SIGNING_ALGORITHM, x509, type CryptoKeyPair } from '../../src/identity/x509.ts';
import type { TlsPeerFacts } from '../../src/identity/types.ts';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

export async function makeTempDir(prefix = 'meshgate-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function readCert(path: string): Promise<X509Certificate> {
  return new X509Certificate(await readFile(path));
}

export interface TestCa {
  readonly keys: CryptoKeyPair;
  readonly cert: x509.X509Certificate;
  readonly pem: string;
}

/** An in-memory root, like the built-in CA's but not on disk. */
export async function makeTestCa(trustDomain: string, now = new Date()): Promise<TestCa> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=test CA ${trustDomain}`,
    notBefore: new Date(now.getTime() - DAY_MS),
    notAfter: new Date(now.getTime() + 30 * DAY_MS),
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { keys, cert, pem: cert.toString('pem') };
}

export interface OddLeafOptions {
  /** URI SANs to include (any number, any text). */
  readonly uris?: readonly string[];
  readonly dnsNames?: readonly string[];
  /** Sets basicConstraints CA:TRUE on what is presented as a leaf. */
  readonly isCa?: boolean;
  /** Signs the leaf with its own key instead of the CA's. */
  readonly selfSigned?: boolean;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

export interface OddLeaf {
  readonly certPem: string;
  readonly keyPem: string;
  readonly cert: X509Certificate;
}

export async function makeOddLeaf(ca: TestCa | null, options: OddLeafOptions = {}): Promise<OddLeaf> {
  const keys = await generateKeyPair();
  const now = Date.now();
  const names: x509.JsonGeneralName[] = [
    ...(options.uris ?? []).map((value) => ({ type: 'url' as const, value })),
    ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
  ];
  const selfSigned = options.selfSigned === true || ca === null;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(options.isCa === true, undefined, true),
    new x509.KeyUsagesExtension(
      options.isCa === true ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature : x509.KeyUsageFlags.digitalSignature,
      true,
    ),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth]),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const cert = await x509.X509CertificateGenerator.create({
    subject: 'CN=odd leaf',
    issuer: selfSigned ? 'CN=odd leaf' : ca.cert.subjectName,
    notBefore: options.notBefore ?? new Date(now - HOUR_MS),
    notAfter: options.notAfter ?? new Date(now + HOUR_MS),
    publicKey: keys.publicKey,
    signingKey: selfSigned ? keys.privateKey : ca.keys.privateKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions,
  });
  const certPem = cert.toString('pem');
  return { certPem, keyPem: await privateKeyToPem(keys.privateKey), cert: new X509Certificate(certPem) };
}

/** What a listener would hand verifyTlsPeer after a handshake. */
export function peerFacts(cert: X509Certificate | null, overrides: Partial<TlsPeerFacts> = {}): TlsPeerFacts {
  return {
    authorized: true,
    authorizationError: null,
    peerCertificate: cert,
    protocol: 'TLSv1.3',
    cipher: 'TLS_AES_256_GCM_SHA384',
    ...overrides,
  };
}
