/**
 * The agent's output directory: `<name>.key` (0600), `bundle.pem`, `<name>.crt`, each
 * written to a temporary name and renamed, so a reader never sees half a file.
 *
 * Order: key, bundle, certificate. A reader that reloads when the certificate changes finds
 * the key and the roots that go with it already in place. Between the key's rename and the
 * certificate's, a reader can see the new key beside the old certificate; meshgate's own
 * reloader (tls-material.ts) refuses that pair and tries again, and clients should too.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { dirname, join } from 'node:path';
import { CA_FILES, ensureDir, writeFileAtomic } from '../ca-store.ts';

export const SVID_FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

export interface SvidFiles {
  readonly certPath: string;
  readonly keyPath: string;
  readonly bundlePath: string;
}

export function svidPaths(outDir: string, name: string): SvidFiles {
  if (!SVID_FILE_NAME.test(name)) throw new TypeError(`name ${JSON.stringify(name)} must be a plain file name`);
  return { certPath: join(outDir, `${name}.crt`), keyPath: join(outDir, `${name}.key`), bundlePath: join(outDir, CA_FILES.bundle) };
}

/**
 * Why `certPem` cannot be written beside `keyPem`, or null: one parseable certificate whose
 * public key is the agent's. An endpoint that answered with anything else must not make the
 * agent replace working files with a pair no TLS stack would load.
 */
export function certificateProblem(certPem: string, keyPem: string, bundlePem: string): string | null {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    return 'the certificate in the answer cannot be parsed';
  }
  if (!cert.checkPrivateKey(createPrivateKey(keyPem))) return 'the certificate in the answer is not for the key the agent sent';
  if (!bundlePem.includes('-----BEGIN CERTIFICATE-----')) return 'the bundle in the answer holds no certificate';
  return null;
}

export async function writeSvidFiles(paths: SvidFiles, pems: { keyPem: string; certPem: string; bundlePem: string }): Promise<void> {
  await ensureDir(dirname(paths.keyPath), 0o700);
  await writeFileAtomic(paths.keyPath, pems.keyPem, { secret: true });
  await writeFileAtomic(paths.bundlePath, pems.bundlePem.endsWith('\n') ? pems.bundlePem : `${pems.bundlePem}\n`, { secret: false });
  await writeFileAtomic(paths.certPath, pems.certPem.endsWith('\n') ? pems.certPem : `${pems.certPem}\n`, { secret: false });
}
