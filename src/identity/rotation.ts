/**
 * Rotating the built-in CA without a flag day. `rotateCa` makes a new root the issuer and
 * keeps every earlier root in bundle.pem until the last certificate it signed has expired
 * (ca-records.ts decides how long); `pruneCa` (also run by every rotation) drops the roots
 * whose time has passed. Workloads and meshgate pick up the new bundle by reloading it
 * (tls-material.ts), so both old and new certificates verify throughout the overlap.
 *
 * Write order, so that a crash at any point leaves a CA that still works:
 *   1. the old key and root are copied to retired/ (0600) — nothing is lost after this;
 *   2. ca.json records the new root and retires the old one — the journal of intent;
 *   3. bundle.pem trusts both — relying parties learn the new root before it signs anything;
 *   4. ca.key, then ca.crt — the switch. loadCa refuses a key that does not match its cert;
 *      the next rotate or prune restores ca.crt from ca.json (repairInterruptedRotation).
 * A crash before step 4 leaves the old root issuing; rotating again finishes the job.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mgError } from '../errors/index.ts';
import { createRoot, DEFAULT_CA_TTL_DAYS } from './ca.ts';
import { DEFAULT_SVID_TTL_SECONDS } from './ca-issue.ts';
import { withCaLock } from './ca-lock.ts';
import {
  activeRecord,
  bundleFor,
  retainedRoots,
  retire,
  rootRecord,
  settleRoots,
  type CaMetadata,
  type CaRootRecord,
} from './ca-records.ts';
import {
  CA_FILES,
  caPaths,
  ensureDir,
  exists,
  loadCa,
  missing,
  repairInterruptedRotation,
  writeFileAtomic,
  writeMetadata,
  type LoadedCa,
} from './ca-store.ts';

export interface RotateCaOptions {
  readonly dir: string;
  /** Lifetime of the new root; default DEFAULT_CA_TTL_DAYS. */
  readonly ttlDays?: number;
  /**
   * How long to keep a root whose issuances were never recorded (a CA created before
   * rotation support): certificates it signed are assumed to live at most this long.
   * Default DEFAULT_SVID_TTL_SECONDS.
   */
  readonly maxSvidTtlSeconds?: number;
  readonly now?: Date;
}

export interface PruneCaOptions {
  readonly dir: string;
  readonly maxSvidTtlSeconds?: number;
  readonly now?: Date;
}

/** A root other than the issuing one, as reported to the operator. */
export interface RootSummary {
  readonly fingerprint256: string;
  readonly subject: string;
  /** Null only for a root that was never retired (cannot happen for a non-issuing root after settling). */
  readonly retainUntil: Date | null;
  /** False when retainUntil is an assumption (see RotateCaOptions.maxSvidTtlSeconds). */
  readonly tracked: boolean;
}

export interface PruneCaResult {
  readonly dir: string;
  readonly bundlePath: string;
  /** Roots besides the issuing one that bundle.pem still carries. */
  readonly retained: readonly RootSummary[];
  /** Roots this call removed from bundle.pem (their files stay in retired/). */
  readonly pruned: readonly RootSummary[];
}

export interface RotateCaResult extends PruneCaResult {
  readonly trustDomain: string;
  /** The new issuing root. */
  readonly current: { readonly fingerprint256: string; readonly subject: string; readonly notAfter: Date };
  /** The root that stopped issuing, and where its key and certificate went. */
  readonly previous: RootSummary & { readonly keyPath: string; readonly certPath: string };
}

function summary(record: CaRootRecord): RootSummary {
  return {
    fingerprint256: record.fingerprint256,
    subject: record.subject,
    retainUntil: record.retainUntil === null ? null : new Date(record.retainUntil),
    tracked: record.tracked,
  };
}

/** retired/<first 16 hex digits of the fingerprint>: stable, so a repeated rotation overwrites rather than duplicates. */
function retiredBase(dir: string, fingerprint256: string): string {
  return join(dir, CA_FILES.retired, `ca-${fingerprint256.replace(/:/g, '').slice(0, 16).toLowerCase()}`);
}

function checkPositive(value: number, name: string, integer: boolean): void {
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new TypeError(`${name} must be a positive ${integer ? 'integer' : 'number'}`);
  }
}

/** The CA's roots with the issuing one recorded, others retired and expired ones pruned. */
function settle(ca: LoadedCa, now: Date, maxSvidTtlSeconds: number): { metadata: CaMetadata; pruned: readonly CaRootRecord[] } {
  const active = activeRecord(ca.metadata, ca.certPem, now);
  const metadata = { ...ca.metadata, roots: [...ca.metadata.roots.filter((r) => r.fingerprint256 !== active.fingerprint256), active] };
  return settleRoots(metadata, active.fingerprint256, now, maxSvidTtlSeconds);
}

async function writeBundle(ca: LoadedCa, metadata: CaMetadata, activePem: string): Promise<void> {
  await writeFileAtomic(caPaths(ca.dir).bundle, bundleFor(metadata, activePem, ca.bundlePem), { secret: false });
}

async function lockedCa<T>(dir: string, fn: (ca: LoadedCa) => Promise<T>): Promise<T> {
  if (!(await exists(dir))) throw missing(dir, 'the directory does not exist');
  return withCaLock(dir, async () => {
    await repairInterruptedRotation(dir);
    return fn(await loadCa(dir));
  });
}

/** Drops from bundle.pem every retired root whose retainUntil has passed. */
export async function pruneCa(options: PruneCaOptions): Promise<PruneCaResult> {
  const maxSvidTtlSeconds = options.maxSvidTtlSeconds ?? DEFAULT_SVID_TTL_SECONDS;
  checkPositive(maxSvidTtlSeconds, 'maxSvidTtlSeconds', true);
  const now = options.now ?? new Date();
  return lockedCa(options.dir, async (ca) => {
    const { metadata, pruned } = settle(ca, now, maxSvidTtlSeconds);
    await writeMetadata(ca.dir, metadata);
    await writeBundle(ca, metadata, ca.certPem);
    const active = activeRecord(metadata, ca.certPem, now).fingerprint256;
    return {
      dir: ca.dir,
      bundlePath: caPaths(ca.dir).bundle,
      retained: retainedRoots(metadata, active).map(summary),
      pruned: pruned.map(summary),
    };
  });
}

/** Makes a new root the issuer; the previous one stays trusted until what it signed expires. */
export async function rotateCa(options: RotateCaOptions): Promise<RotateCaResult> {
  const ttlDays = options.ttlDays ?? DEFAULT_CA_TTL_DAYS;
  const maxSvidTtlSeconds = options.maxSvidTtlSeconds ?? DEFAULT_SVID_TTL_SECONDS;
  checkPositive(ttlDays, 'ttlDays', false);
  checkPositive(maxSvidTtlSeconds, 'maxSvidTtlSeconds', true);
  const now = options.now ?? new Date();
  return lockedCa(options.dir, async (ca) => {
    const trustDomain = ca.metadata.trustDomain;
    const previous = retire(activeRecord(ca.metadata, ca.certPem, now), now, maxSvidTtlSeconds);
    const generation = ca.metadata.roots.length + (ca.metadata.roots.some((r) => r.fingerprint256 === previous.fingerprint256) ? 1 : 2);
    const root = await createRoot(trustDomain, ttlDays, now, `meshgate CA ${trustDomain} #${generation}`);
    const next = rootRecord(root.certPem, now, true);
    if (next.fingerprint256 === previous.fingerprint256) throw mgError('MG_INTERNAL', 'the new CA root is identical to the old one');

    const paths = caPaths(ca.dir);
    const base = retiredBase(ca.dir, previous.fingerprint256);
    await ensureDir(join(ca.dir, CA_FILES.retired), 0o700);
    await writeFileAtomic(`${base}.key`, await readFile(paths.key, 'utf8'), { secret: true });
    await writeFileAtomic(`${base}.crt`, ca.certPem, { secret: false });

    const rotated: CaMetadata = {
      ...ca.metadata,
      notAfter: root.cert.notAfter.toISOString(),
      roots: [...ca.metadata.roots.filter((r) => r.fingerprint256 !== previous.fingerprint256), previous, next],
    };
    const { metadata, pruned } = settleRoots(rotated, next.fingerprint256, now, maxSvidTtlSeconds);
    await writeMetadata(ca.dir, metadata);
    await writeBundle(ca, metadata, root.certPem);
    await writeFileAtomic(paths.key, root.keyPem, { secret: true });
    await writeFileAtomic(paths.cert, root.certPem, { secret: false });

    const settledPrevious = metadata.roots.find((r) => r.fingerprint256 === previous.fingerprint256) ?? previous;
    return {
      dir: ca.dir,
      trustDomain,
      bundlePath: paths.bundle,
      current: { fingerprint256: next.fingerprint256, subject: next.subject, notAfter: root.cert.notAfter },
      previous: { ...summary(settledPrevious), keyPath: `${base}.key`, certPath: `${base}.crt` },
      retained: retainedRoots(metadata, next.fingerprint256).map(summary),
      pruned: pruned.map(summary),
    };
  });
}
