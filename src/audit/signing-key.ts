/**
 * The Ed25519 key that signs audit checkpoints. Whoever can edit the audit files can rebuild
 * their hash chain; without this key they cannot sign the checkpoints that pin it. So the
 * private key lives apart from the audit directory, readable by meshgate's user only, and
 * verification needs just the public key, which can be copied anywhere.
 */
import * as crypto from 'node:crypto';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname, relative, resolve, isAbsolute } from 'node:path';
import { mgError } from '../errors/index.ts';

export interface AuditSigner {
  /** First 16 hex digits of SHA-256 over the raw public key: names the key in every checkpoint. */
  readonly keyId: string;
  /** base64url Ed25519 signature. */
  sign(data: Buffer): string;
}

export interface AuditVerifier {
  readonly keyId: string;
  verify(data: Buffer, signature: string): boolean;
}

/** 64 bytes of Ed25519 signature in base64url, unpadded. */
const SIGNATURE = /^[A-Za-z0-9_-]{86}$/;

export function publicKeyPathOf(privateKeyPath: string): string {
  return `${privateKeyPath}.pub`;
}

function keyIdOf(publicKey: crypto.KeyObject): string {
  const raw = publicKey.export({ format: 'jwk' }).x;
  if (typeof raw !== 'string') throw new TypeError('an Ed25519 public key exports its x coordinate');
  return crypto.createHash('sha256').update(Buffer.from(raw, 'base64url')).digest('hex').slice(0, 16);
}

function notFound(path: string, what: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
  return mgError('MG_CONFIG_INVALID', `cannot read the audit ${what} ${path} (${code}); create one with 'meshgate audit keygen --out ${path.endsWith('.pub') ? path.slice(0, -4) : path}'`, error);
}

/** Writes a new key pair: `path` (PKCS#8 PEM, 0600) and `path`.pub (SPKI PEM, 0644). Never overwrites. */
export async function generateSigningKey(path: string): Promise<{ keyId: string; privateKeyPath: string; publicKeyPath: string }> {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const publicKeyPath = publicKeyPathOf(path);
  const create = async (file: string, mode: number) => {
    try {
      const handle = await open(file, 'wx', mode);
      // Exactly `mode`, whatever the umask: the public key is meant to be copied around.
      await handle.chmod(mode);
      return handle;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw mgError('MG_CONFIG_INVALID', `${file} already exists; meshgate never overwrites a signing key (checkpoints signed with it could no longer be checked). Choose another --out`);
      }
      throw mgError('MG_CONFIG_INVALID', `cannot create ${file} (${(error as NodeJS.ErrnoException).code ?? 'unknown error'}); check that its directory exists and is writable`, error);
    }
  };
  // Both names are claimed before either is written, so a failure never leaves a public key
  // beside a private key it does not belong to.
  const privateHandle = await create(path, 0o600);
  let publicHandle;
  try {
    publicHandle = await create(publicKeyPath, 0o644);
  } catch (error) {
    await privateHandle.close();
    await unlink(path);
    throw error;
  }
  for (const [handle, content] of [
    [privateHandle, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
    [publicHandle, publicKey.export({ type: 'spki', format: 'pem' }).toString()],
  ] as const) {
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
  return { keyId: keyIdOf(publicKey), privateKeyPath: path, publicKeyPath };
}

export interface LoadSigningKeyOptions {
  /** The audit file the key will sign for; a key in its directory (or below) is refused. */
  readonly auditFile?: string;
}

export async function loadSigningKey(path: string, options: LoadSigningKeyOptions = {}): Promise<AuditSigner> {
  if (options.auditFile !== undefined) {
    const inside = relative(resolve(dirname(options.auditFile)), resolve(path));
    if (inside === '' || (!inside.startsWith('..') && !isAbsolute(inside))) {
      throw mgError(
        'MG_CONFIG_INVALID',
        `the audit signing key ${path} is inside the audit directory ${dirname(options.auditFile)}; keep it apart from the audit files (whoever can reach them must not reach the key), e.g. in /etc/meshgate`,
      );
    }
  }
  let text: string;
  try {
    const { mode } = await stat(path);
    if ((mode & 0o077) !== 0) {
      throw mgError('MG_CONFIG_INVALID', `the audit signing key ${path} can be read by other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
    }
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as { code?: string }).code === 'MG_CONFIG_INVALID') throw error;
    throw notFound(path, 'signing key', error);
  }
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(text);
  } catch (error) {
    throw mgError('MG_CONFIG_INVALID', `${path} is not a PEM private key; create an Ed25519 key with 'meshgate audit keygen'`, error);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw mgError('MG_CONFIG_INVALID', `${path} is a ${privateKey.asymmetricKeyType ?? 'unknown'} key, not Ed25519; create one with 'meshgate audit keygen'`);
  }
  const keyId = keyIdOf(crypto.createPublicKey(privateKey));
  return { keyId, sign: (data) => crypto.sign(null, data, privateKey).toString('base64url') };
}

export async function loadPublicKey(path: string): Promise<AuditVerifier> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw notFound(path, 'public key', error);
  }
  let publicKey: crypto.KeyObject;
  try {
    publicKey = crypto.createPublicKey(text);
  } catch (error) {
    throw mgError('MG_CONFIG_INVALID', `${path} is not an Ed25519 public key in PEM; use the .pub file 'meshgate audit keygen' wrote`, error);
  }
  if (publicKey.asymmetricKeyType !== 'ed25519' || text.includes('PRIVATE KEY')) {
    throw mgError('MG_CONFIG_INVALID', `${path} is not an Ed25519 public key in PEM; use the .pub file 'meshgate audit keygen' wrote`);
  }
  return {
    keyId: keyIdOf(publicKey),
    verify: (data, signature) => SIGNATURE.test(signature) && crypto.verify(null, data, publicKey, Buffer.from(signature, 'base64url')),
  };
}
