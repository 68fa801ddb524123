/**
 * The built-in CA on disk. One directory holds:
 *   ca.crt      the self-signed root (PEM)
 *   ca.key      its PKCS#8 private key, mode 0600
 *   bundle.pem  the trust bundle: every root meshgate and workloads should trust
 *   ca.json     trust domain, creation time, and every root with what it signed (ca-records.ts)
 *   retired/    keys and certificates of roots that no longer issue, mode 0600, kept for audit
 *   ca.lock     present while a process issues or rotates (ca-lock.ts)
 * Files are written to a temporary name and renamed, so a reader (the listener reloading its
 * bundle, a workload reloading its SVID) never sees half a file.
 */
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mgError, type MeshgateError } from '../errors/index.ts';
import { parseRoots, type CaMetadata } from './ca-records.ts';
import { parseTrustDomain } from './spiffe.ts';
import { privateKeyFromPem, x509, type CryptoKey } from './x509.ts';

export const CA_FILES = {
  cert: 'ca.crt',
  key: 'ca.key',
  bundle: 'bundle.pem',
  metadata: 'ca.json',
  retired: 'retired',
} as const;

export type { CaMetadata } from './ca-records.ts';

export interface LoadedCa {
  readonly dir: string;
  readonly metadata: CaMetadata;
  readonly cert: x509.X509Certificate;
  /** ca.crt as read, for fingerprints and ca.json records. */
  readonly certPem: string;
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

export function missing(dir: string, detail: string): MeshgateError {
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
  if (typeof trustDomain !== 'string' || typeof created !== 'string' || typeof notAfter !== 'string') {
    throw corrupt(path, 'lacks trustDomain, created or notAfter');
  }
  try {
    parseTrustDomain(trustDomain);
  } catch (error) {
    throw corrupt(path, 'names an invalid trust domain', error);
  }
  const roots = parseRoots(version, record['roots'], (problem, cause) => corrupt(path, problem, cause));
  return { version: 2, trustDomain, created, notAfter, roots };
}

/** ca.json is public (no secrets), written atomically like every CA file. */
export async function writeMetadata(dir: string, metadata: CaMetadata): Promise<void> {
  await writeFileAtomic(caPaths(dir).metadata, `${JSON.stringify(metadata, null, 2)}\n`, { secret: false });
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
  // A rotation interrupted between writing ca.key and ca.crt would otherwise sign
  // certificates that chain to nothing.
  if (!new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem))) {
    throw mgError(
      'MG_CONFIG_INVALID',
      `${paths.key} is not the key of ${paths.cert} (an interrupted \`meshgate ca rotate\`?); run \`meshgate ca rotate --dir ${dir} --prune-only\` to finish the rotation, or restore both files from ${join(dir, CA_FILES.retired)}`,
    );
  }
  return { dir, metadata, cert, certPem, key, bundlePem };
}

/**
 * Finishes a rotation that stopped after ca.key was replaced but before ca.crt was: the new
 * root is already in ca.json, so ca.crt is rewritten from the record whose key ca.key is.
 * Returns whether it repaired anything. Call with the CA lock held.
 */
export async function repairInterruptedRotation(dir: string): Promise<boolean> {
  const paths = caPaths(dir);
  let key;
  try {
    key = createPrivateKey(await readFile(paths.key, 'utf8'));
    if (new X509Certificate(await readFile(paths.cert, 'utf8')).checkPrivateKey(key)) return false;
  } catch {
    return false; // missing or unreadable files: loadCa explains those
  }
  const metadata = parseMetadata(paths.metadata, await readFile(paths.metadata, 'utf8'));
  const match = metadata.roots.find((record) => new X509Certificate(record.certificate).checkPrivateKey(key));
  if (match === undefined) return false;
  await writeFileAtomic(paths.cert, match.certificate, { secret: false });
  return true;
}
