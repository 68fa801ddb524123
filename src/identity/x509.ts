/**
 * The one place @peculiar/x509 is loaded: it needs a Reflect metadata polyfill evaluated
 * before it (ES modules evaluate imports in order) and a WebCrypto provider. Everything
 * else imports `x509` and the key helpers from here, never the package directly.
 */
import './reflect-polyfill.ts';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

type ProviderCrypto = Parameters<typeof x509.cryptoProvider.set>[0];
x509.cryptoProvider.set(webcrypto as unknown as ProviderCrypto);

export { x509 };
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

/** ECDSA P-256 with SHA-256: what Istio and SPIRE issue by default, and small and fast. */
export const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

export async function generateKeyPair(): Promise<CryptoKeyPair> {
  // Extractable so the private key can be written once as PKCS#8; it is never logged.
  return webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
}

export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return pemFile(x509.PemConverter.encode(der, 'PRIVATE KEY'));
}

/**
 * PEM as a file should hold it: ending in a newline. Operators build bundles with
 * `cat a.pem b.pem >> bundle.pem`; without the newline the two blocks fuse into a line
 * OpenSSL cannot read.
 */
export function pemFile(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

/** A certificate's PEM, ending in a newline (see pemFile). */
export function certificatePem(cert: x509.X509Certificate): string {
  return pemFile(cert.toString('pem'));
}

/** Reads a PKCS#8 PEM P-256 key for signing; returns null when the PEM is not one. */
export async function privateKeyFromPem(pem: string): Promise<CryptoKey | null> {
  try {
    const [der] = x509.PemConverter.decode(pem);
    if (der === undefined) return null;
    return await webcrypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']);
  } catch {
    return null;
  }
}

/** A random positive 128-bit serial (RFC 5280 allows up to 20 octets; CAs use >= 64 random bits). */
export function randomSerialHex(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  // Top bit clear keeps the INTEGER positive without a pad byte; the next bit set keeps
  // its encoding at exactly 16 octets whatever the random draw.
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return Buffer.from(bytes).toString('hex');
}
