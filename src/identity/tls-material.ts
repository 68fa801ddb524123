/**
 * The listener's certificate, key and trust bundles, reloaded without a restart: after a CA
 * rotation (rotation.ts), an SVID renewal by `meshgate agent` or Istio, or a Kubernetes
 * secret update. Kubernetes swaps a `..data` symlink inside the volume directory rather
 * than writing the files, so the *directories* are watched, not the files; fs.watch also
 * misses events on some filesystems (NFS, some overlay setups), so a poll compares content
 * hashes every few seconds as well. A change that does not load (a half-written file, a key
 * that belongs to another certificate) never replaces the context in use: the previous one
 * keeps serving and onError says what is wrong, once per distinct broken content.
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { isMeshgateError, mgError, type MeshgateError } from '../errors/index.ts';
import { pemCertificates } from './ca-records.ts';

export const DEFAULT_TLS_POLL_MS = 5000;
export const DEFAULT_TLS_DEBOUNCE_MS = 100;

/** Structurally the same as meshgate's Logger, so identity code needs nothing from engines. */
export interface TlsMaterialLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export interface TlsMaterialChange {
  /** Subject and expiry of the certificate now served, and how many roots are trusted. */
  readonly certificate: { readonly subject: string; readonly notAfter: string; readonly fingerprint256: string };
  readonly bundleCertificates: number;
}

export interface TlsMaterialOptions {
  readonly certFile: string;
  readonly keyFile: string;
  /** Concatenated in this order, e.g. meshgate's bundle.pem and Istio's root-cert.pem. */
  readonly bundleFiles: readonly string[];
  readonly onChange?: (change: TlsMaterialChange) => void;
  readonly onError?: (error: MeshgateError) => void;
  readonly log?: TlsMaterialLog;
  /** Also applied to every context (ciphers, minVersion, ...); cert, key and ca come from the files. */
  readonly contextOptions?: Omit<SecureContextOptions, 'cert' | 'key' | 'ca'>;
  /** Default DEFAULT_TLS_POLL_MS. */
  readonly pollIntervalMs?: number;
  /** Events within this window make one reload; default DEFAULT_TLS_DEBOUNCE_MS. */
  readonly debounceMs?: number;
  /** Set false where fs.watch is unreliable; the poll alone then notices changes. Default true. */
  readonly watch?: boolean;
}

export interface TlsMaterial {
  /** The latest context that loaded completely; never a half-updated one. */
  secureContext(): SecureContext;
  /** The trust bundle of that context: every bundle file, concatenated. */
  bundlePem(): Buffer;
  /**
   * The same material as options, for servers that build their own context
   * (`http2.createSecureServer`, `server.setSecureContext` after a change).
   */
  contextOptions(): SecureContextOptions;
  /** Calls `listener` after each reload that installed new material; returns the unsubscribe. */
  subscribe(listener: () => void): () => void;
  /** Re-reads the files now; resolves true when a new context was installed. */
  reload(): Promise<boolean>;
  /** Stops watching and polling; the process may then exit. */
  close(): void;
}

interface Loaded {
  readonly hash: string;
  readonly context: SecureContext;
  readonly options: SecureContextOptions;
  readonly bundle: Buffer;
  readonly change: TlsMaterialChange;
}

function invalid(message: string, cause?: unknown): MeshgateError {
  return mgError('MG_TLS_MATERIAL_INVALID', message, cause);
}

async function readAll(files: readonly string[]): Promise<Buffer[]> {
  return Promise.all(
    files.map(async (file) => {
      try {
        return await readFile(file);
      } catch (error) {
        throw invalid(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, error);
      }
    }),
  );
}

function hashOf(contents: readonly Buffer[]): string {
  const hash = createHash('sha256');
  // Length-prefixed, so moving bytes from one file to the next still changes the hash.
  for (const content of contents) hash.update(`${content.length}:`).update(content);
  return hash.digest('hex');
}

/** Every certificate in a PEM file, or a coded error naming the file and what is wrong. */
function parseCertificates(file: string, text: string): X509Certificate[] {
  const blocks = pemCertificates(text);
  const begun = (text.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;
  if (blocks.length === 0 || begun !== blocks.length) {
    throw invalid(`${file} does not hold complete PEM certificates (empty, or a write still in progress?)`);
  }
  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw invalid(`certificate ${index + 1} in ${file} cannot be parsed`, error);
    }
  });
}

function build(options: TlsMaterialOptions, contents: readonly Buffer[], hash: string): Loaded {
  const [certPem, keyPem, ...bundleParts] = contents as [Buffer, Buffer, ...Buffer[]];
  const leaf = parseCertificates(options.certFile, certPem.toString('utf8'))[0] as X509Certificate;
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    throw invalid(`${options.keyFile} is not a PEM private key (empty, or a write still in progress?)`, error);
  }
  if (!leaf.checkPrivateKey(key)) {
    throw invalid(
      `${options.keyFile} is not the private key of ${options.certFile} (were they updated one at a time? the other file may follow)`,
    );
  }
  let count = 0;
  const pieces = bundleParts.map((part, index) => {
    const text = part.toString('utf8');
    count += parseCertificates(options.bundleFiles[index] as string, text).length;
    return text.endsWith('\n') ? part : Buffer.concat([part, Buffer.from('\n')]);
  });
  const bundle = Buffer.concat(pieces);
  let context: SecureContext;
  const contextOptions: SecureContextOptions = { ...options.contextOptions, cert: certPem, key: keyPem, ca: bundle };
  try {
    context = createSecureContext(contextOptions);
  } catch (error) {
    throw invalid(`TLS rejected ${options.certFile} / ${options.keyFile}: ${(error as Error).message}`, error);
  }
  return {
    hash,
    context,
    options: contextOptions,
    bundle,
    change: {
      certificate: { subject: leaf.subject, notAfter: new Date(leaf.validTo).toISOString(), fingerprint256: leaf.fingerprint256 },
      bundleCertificates: count,
    },
  };
}

/** Loads the files once (rejecting with MG_TLS_MATERIAL_INVALID if they do not load), then follows them. */
export async function watchTlsMaterial(options: TlsMaterialOptions): Promise<TlsMaterial> {
  if (options.bundleFiles.length === 0) throw new TypeError('watchTlsMaterial needs at least one bundle file');
  const files = [options.certFile, options.keyFile, ...options.bundleFiles];
  const initialContents = await readAll(files);
  let current = build(options, initialContents, hashOf(initialContents));
  let lastFailedHash: string | null = null;
  let closed = false;
  let running: Promise<boolean> | null = null;
  let again = false;
  let debounce: NodeJS.Timeout | null = null;
  const watchers: FSWatcher[] = [];
  const watchedDirs = new Set<string>();
  const subscribers = new Set<() => void>();

  const report = (error: unknown): void => {
    const coded = isMeshgateError(error) ? error : invalid(`reloading TLS files failed: ${String(error)}`, error);
    options.log?.warn('TLS files changed but do not load; still serving the previous ones', { code: coded.code, error: coded.message });
    options.onError?.(coded);
  };

  const attempt = async (): Promise<boolean> => {
    let contents: Buffer[];
    try {
      contents = await readAll(files);
    } catch (error) {
      // A file briefly missing mid-swap is reported only if it stays missing until the next try.
      if (lastFailedHash !== 'unreadable') report(error);
      lastFailedHash = 'unreadable';
      return false;
    }
    const hash = hashOf(contents);
    if (closed) return false;
    if (hash === current.hash) {
      lastFailedHash = null; // back to what is served: a later breakage is news again
      return false;
    }
    if (hash === lastFailedHash) return false;
    try {
      current = build(options, contents, hash);
    } catch (error) {
      lastFailedHash = hash;
      report(error);
      return false;
    }
    lastFailedHash = null;
    options.log?.info('reloaded TLS files', { ...current.change.certificate, bundleCertificates: current.change.bundleCertificates });
    options.onChange?.(current.change);
    for (const listener of subscribers) listener();
    return true;
  };

  // One reload at a time; a request during a reload runs once more after it.
  const reload = async (): Promise<boolean> => {
    if (running !== null) {
      again = true;
      return running;
    }
    running = (async () => {
      let changed = false;
      do {
        again = false;
        changed = (await attempt()) || changed;
      } while (again && !closed);
      return changed;
    })();
    try {
      return await running;
    } finally {
      running = null;
    }
  };

  const schedule = (): void => {
    if (closed) return;
    if (debounce !== null) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = null;
      void reload();
    }, options.debounceMs ?? DEFAULT_TLS_DEBOUNCE_MS);
    debounce.unref();
  };

  const watchDir = (dir: string): void => {
    if (watchedDirs.has(dir) || closed) return;
    try {
      // Any event in the directory may be the symlink swap; reloading unchanged files is a no-op.
      const watcher = watch(dir, { persistent: false }, schedule);
      watcher.on('error', (error) => {
        options.log?.warn('stopped watching a TLS directory; the poll still notices changes', { dir, error: String(error) });
        watcher.close();
        const index = watchers.indexOf(watcher);
        if (index !== -1) watchers.splice(index, 1);
        watchedDirs.delete(dir); // the next poll tries again
      });
      watchers.push(watcher);
      watchedDirs.add(dir);
    } catch (error) {
      options.log?.warn('cannot watch a TLS directory; relying on the poll', { dir, error: String(error) });
    }
  };
  const dirs = [...new Set(files.map((file) => dirname(resolve(file))))];
  const watchAll = (): void => {
    if (options.watch !== false) dirs.forEach(watchDir);
  };
  watchAll();

  const poll = setInterval(() => {
    watchAll();
    void reload();
  }, options.pollIntervalMs ?? DEFAULT_TLS_POLL_MS);
  poll.unref();

  return {
    secureContext: () => current.context,
    bundlePem: () => current.bundle,
    contextOptions: () => current.options,
    subscribe(listener) {
      subscribers.add(listener);
      return () => subscribers.delete(listener);
    },
    reload,
    close() {
      closed = true;
      clearInterval(poll);
      subscribers.clear();
      if (debounce !== null) clearTimeout(debounce);
      for (const watcher of watchers.splice(0)) watcher.close();
      watchedDirs.clear();
    },
  };
}
