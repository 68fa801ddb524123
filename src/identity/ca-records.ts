/**
 * ca.json: what the built-in CA remembers about its roots, and the pure rules that decide
 * which roots the trust bundle keeps. Rotation must not break a certificate that is still in
 * date, so for every root the CA records the latest notAfter it ever signed (`issuedUntil`,
 * updated at each issuance under the CA lock); a retired root stays in bundle.pem until
 * that instant (`retainUntil`) and is pruned after it.
 */
import { X509Certificate } from 'node:crypto';

export interface CaRootRecord {
  /** SHA-256 of the DER, colon-separated upper-case hex: the form node:crypto and openssl print. */
  readonly fingerprint256: string;
  readonly subject: string;
  /** The root itself (PEM), so bundle.pem can always be rebuilt from ca.json alone. */
  readonly certificate: string;
  readonly notAfter: string;
  /** When this root joined the CA (init or rotation). */
  readonly added: string;
  /** The latest notAfter of any certificate it signed; null when it signed none. */
  readonly issuedUntil: string | null;
  /**
   * False for a root whose issuances were not recorded (a CA created before ca.json version 2):
   * issuedUntil is then a lower bound only, and retirement assumes the longest SVID lifetime.
   */
  readonly tracked: boolean;
  /** When it stopped issuing; null while it is (or was, before an interrupted rotation) active. */
  readonly retired: string | null;
  /** Until when bundle.pem keeps it; set on retirement. */
  readonly retainUntil: string | null;
  /** When it left bundle.pem; the record stays as history. */
  readonly pruned: string | null;
}

export interface CaMetadata {
  readonly version: 2;
  readonly trustDomain: string;
  readonly created: string;
  /** The issuing root's expiry. */
  readonly notAfter: string;
  readonly roots: readonly CaRootRecord[];
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Every PEM certificate block in `text`, in order, each ending with a newline. */
export function pemCertificates(text: string): string[] {
  return (text.match(PEM_CERTIFICATE) ?? []).map((block) => `${block}\n`);
}

export function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

export function rootRecord(pem: string, added: Date, tracked: boolean): CaRootRecord {
  const cert = new X509Certificate(pem);
  return {
    fingerprint256: cert.fingerprint256,
    subject: cert.subject.replace(/\n/g, ', '),
    certificate: pem.endsWith('\n') ? pem : `${pem}\n`,
    notAfter: new Date(cert.validTo).toISOString(),
    added: added.toISOString(),
    issuedUntil: null,
    tracked,
    retired: null,
    retainUntil: null,
    pruned: null,
  };
}

function later(a: string | null, b: Date): string {
  return a !== null && new Date(a).getTime() >= b.getTime() ? a : b.toISOString();
}

function replaceRoot(metadata: CaMetadata, record: CaRootRecord): CaMetadata {
  const others = metadata.roots.filter((r) => r.fingerprint256 !== record.fingerprint256);
  return { ...metadata, roots: [...others, record] };
}

/**
 * The record of the root in ca.crt. A CA from before version 2 has none: it is created
 * untracked, since what that root signed earlier is unknown.
 */
export function activeRecord(metadata: CaMetadata, activePem: string, now: Date): CaRootRecord {
  const fingerprint = fingerprintOf(activePem);
  return metadata.roots.find((r) => r.fingerprint256 === fingerprint) ?? rootRecord(activePem, now, false);
}

/** Notes one issuance: the root's issuedUntil (and a retired root's retainUntil) only ever grow. */
export function withIssuance(metadata: CaMetadata, activePem: string, notAfter: Date, now: Date): CaMetadata {
  const record = activeRecord(metadata, activePem, now);
  const updated: CaRootRecord = {
    ...record,
    issuedUntil: later(record.issuedUntil, notAfter),
    // Only after a rotation interrupted before ca.crt was replaced does a retired root sign.
    retainUntil: record.retired === null ? record.retainUntil : later(record.retainUntil, notAfter),
  };
  return replaceRoot(metadata, updated);
}

/**
 * Retires a root: kept until the last certificate it signed expires. When that is unknown
 * (untracked), until `now + maxSvidTtlSeconds`, never past the root's own expiry.
 */
export function retire(record: CaRootRecord, now: Date, maxSvidTtlSeconds: number): CaRootRecord {
  const rootExpiry = new Date(record.notAfter).getTime();
  let until = record.issuedUntil === null ? now.getTime() : new Date(record.issuedUntil).getTime();
  if (!record.tracked) until = Math.max(until, Math.min(now.getTime() + maxSvidTtlSeconds * 1000, rootExpiry));
  if (record.retainUntil !== null) until = Math.max(until, new Date(record.retainUntil).getTime());
  return {
    ...record,
    retired: record.retired ?? now.toISOString(),
    retainUntil: new Date(until).toISOString(),
  };
}

export interface RootChanges {
  readonly metadata: CaMetadata;
  /** Records pruned by this call. */
  readonly pruned: readonly CaRootRecord[];
}

/**
 * Retires every root but the active one, then prunes those whose retainUntil has passed.
 * A certificate is valid through its notAfter instant, so a root goes only once `now` is
 * strictly later. The active root is never pruned, whatever its record says.
 */
export function settleRoots(metadata: CaMetadata, activeFingerprint: string, now: Date, maxSvidTtlSeconds: number): RootChanges {
  const pruned: CaRootRecord[] = [];
  const roots = metadata.roots.map((record) => {
    if (record.fingerprint256 === activeFingerprint || record.pruned !== null) return record;
    const retired = record.retired === null || record.retainUntil === null ? retire(record, now, maxSvidTtlSeconds) : record;
    if (new Date(retired.retainUntil ?? 0).getTime() >= now.getTime()) return retired;
    const gone = { ...retired, pruned: now.toISOString() };
    pruned.push(gone);
    return gone;
  });
  return { metadata: { ...metadata, roots }, pruned };
}

/** Roots other than the active one that bundle.pem still carries, newest first. */
export function retainedRoots(metadata: CaMetadata, activeFingerprint: string): CaRootRecord[] {
  return metadata.roots
    .filter((r) => r.fingerprint256 !== activeFingerprint && r.pruned === null)
    .sort((a, b) => b.added.localeCompare(a.added));
}

/**
 * bundle.pem: the active root, then retained roots, then any certificate someone added to
 * the file by hand (another mesh's root, say) that is none of this CA's roots, kept as found.
 */
export function bundleFor(metadata: CaMetadata, activePem: string, currentBundle: string): string {
  const active = fingerprintOf(activePem);
  const known = new Set([active, ...metadata.roots.map((r) => r.fingerprint256)]);
  const foreign = pemCertificates(currentBundle).filter((pem) => {
    try {
      return !known.has(fingerprintOf(pem));
    } catch {
      return false; // an unreadable block is dropped rather than handed to every verifier
    }
  });
  const retained = retainedRoots(metadata, active).map((r) => r.certificate);
  return [pemCertificates(activePem)[0] ?? activePem, ...retained, ...foreign].join('');
}

type Problem = (message: string, cause?: unknown) => Error;

function isoOrNull(value: unknown): value is string | null {
  return value === null || (typeof value === 'string' && !Number.isNaN(new Date(value).getTime()));
}

function parseRoot(value: unknown, index: number, problem: Problem): CaRootRecord {
  const r = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const strings = ['fingerprint256', 'subject', 'certificate', 'notAfter', 'added'] as const;
  for (const key of strings) {
    if (typeof r[key] !== 'string') throw problem(`has roots[${index}] without a string ${key}`);
  }
  for (const key of ['issuedUntil', 'retired', 'retainUntil', 'pruned'] as const) {
    if (!isoOrNull(r[key])) throw problem(`has roots[${index}].${key} that is neither a date nor null`);
  }
  if (typeof r['tracked'] !== 'boolean') throw problem(`has roots[${index}] without a boolean tracked`);
  return {
    fingerprint256: r['fingerprint256'] as string,
    subject: r['subject'] as string,
    certificate: r['certificate'] as string,
    notAfter: r['notAfter'] as string,
    added: r['added'] as string,
    issuedUntil: r['issuedUntil'] as string | null,
    tracked: r['tracked'],
    retired: r['retired'] as string | null,
    retainUntil: r['retainUntil'] as string | null,
    pruned: r['pruned'] as string | null,
  };
}

/**
 * Reads version 2, and version 1 (no roots: the active root is then recorded untracked on
 * first use). `problem` builds the caller's error naming the file.
 */
export function parseRoots(version: unknown, roots: unknown, problem: Problem): readonly CaRootRecord[] {
  if (version === 1) return [];
  if (version !== 2) throw problem('has a version meshgate does not know (expected 1 or 2)');
  if (!Array.isArray(roots)) throw problem('lacks its roots list');
  return roots.map((value, index) => parseRoot(value, index, problem));
}
