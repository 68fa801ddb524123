/**
 * The built-in CA on disk. One directory holds:
 *   ca.crt      the self-signed root (PEM)
 *   ca.key      its PKCS#8 private key, mode 0600
 *   bundle.pem  the trust bundle: every root meshgate and workloads should trust
 *   ca.json     trust domain and creation time, so nothing has to be re-derived from the cert
 * Files are written to a temporary name and renamed, so a reader (the listener reloading its
 * bundle, a workload reloading its SVID) never sees half a file.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mgError, type MeshgateError } from '../errors/index.ts';
import { parseTrustDomain } from './spiffe.ts';
import { privateKeyFromPem, x509, type CryptoKey } from './x509.ts';

export const CA_FILES = {
  cert: 'ca.crt',
  key: 'ca.key',
  bundle: 'bundle.pem',
  metadata: 'ca.json',
} as const;

export interface CaMetadata {
  readonly version: 1;
  readonly trustDomain: string;
  readonly created: string;
  readonly notAfter: string;
}

export interface LoadedCa {
  readonly dir: string;
  readonly metadata: CaMetadata;
  readonly cert: x509.X509Certificate;
  readonly key: CryptoKey;
  readonly bundlePem: string;
}

export function caPaths(dir: string): { cert: string; key: string; bundle: string; metadata: string } {
  return {
    cert: join(dir, CA_FILES.cert),
    key: join(dir, CA_FILES.key),
    bundle: join(dir, CA_FILES.bundle),
    metadata: join(dir, CA_FILES.metadata),
  };
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Writes atomically; `secret` files are created 0600 from the start, never chmod-ed later. */
export async function writeFileAtomic(path: string, content: string, options: { secret: boolean }): Promise<void> {
  const mode = options.secret ? 0o600 : 0o644;
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temp, content, { mode, flag: 'wx' });
    // The umask may have narrowed a public file; a secret one only ever gets narrower.
    await chmod(temp, mode);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

export async function ensureDir(dir: string, mode: number): Promise<void> {
  await mkdir(dir, { recursive: true, mode });
}

function missing(dir: string, detail: string): MeshgateError {
  return mgError(
    'MG_CA_MISSING',
    `no CA in ${dir} (${detail}); run \`meshgate ca init --dir ${dir} --trust-domain <trust-domain>\` first`,
  );
}

function corrupt(path: string, problem: string, cause?: unknown): MeshgateError {
  return mgError('MG_CONFIG_INVALID', `the CA file ${path} ${problem}; restore it or create a new CA with \`meshgate ca init --force\``, cause);
}

function parseMetadata(path: string, text: string): CaMetadata {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw corrupt(path, 'is not valid JSON', error);
  }
  const record = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const { version, trustDomain, created, notAfter } = record;
  if (version !== 1 || typeof trustDomain !== 'string' || typeof created !== 'string' || typeof notAfter !== 'string') {
    throw corrupt(path, 'lacks version 1, trustDomain, created or notAfter');
  }
  try {
    parseTrustDomain(trustDomain);
  } catch (error) {
    throw corrupt(path, 'names an invalid trust domain', error);
  }
  return { version, trustDomain, created, notAfter };
}

/** Reads the CA from `dir`; MG_CA_MISSING when there is none, MG_CONFIG_INVALID when it is damaged. */
export async function loadCa(dir: string): Promise<LoadedCa> {
  const paths = caPaths(dir);
  if (!(await exists(dir))) throw missing(dir, 'the directory does not exist');
  for (const file of [paths.key, paths.cert, paths.metadata, paths.bundle]) {
    if (!(await exists(file))) throw missing(dir, `${file} does not exist`);
  }
  const [certPem, keyPem, bundlePem, metadataText] = await Promise.all([
    readFile(paths.cert, 'utf8'),
    readFile(paths.key, 'utf8'),
    readFile(paths.bundle, 'utf8'),
    readFile(paths.metadata, 'utf8'),
  ]);
  const metadata = parseMetadata(paths.metadata, metadataText);
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(certPem);
  } catch (error) {
    throw corrupt(paths.cert, 'is not a PEM certificate', error);
  }
  const key = await privateKeyFromPem(keyPem);
  if (key === null) throw corrupt(paths.key, 'is not a PKCS#8 P-256 private key');
  return { dir, metadata, cert, key, bundlePem };
}
