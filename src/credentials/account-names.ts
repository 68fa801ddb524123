/**
 * Names and secrets for lease accounts. A lease account's user name is what a DBA sees in
 * SHOW PROCESSLIST and the slow log, so it carries a readable slug of the identity it was
 * issued to; the random suffix is what makes it unique per lease.
 */
import { randomBytes } from 'node:crypto';

/** Every account meshgate creates starts with this, so leak checks and the reaper find them. */
export const MANAGED_USER_PREFIX = 'mg-';

/**
 * MariaDB 10.11 itself accepts 128 characters (mysql.global_priv.User is CHAR(128)), but
 * older MariaDB releases stop at 80; staying at 80 keeps names valid across upgrades and
 * replicas running an older server, and is still room for a readable slug.
 */
export const MAX_USER_NAME_LENGTH = 80;

/** RFC 4648 base32, lowercase: no characters that need quoting, no ambiguity with the slug. */
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const SUFFIX = /^[a-z0-9]{1,32}$/;
const SPIFFE_WORKLOAD = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)\/?$/;
const SPIFFE_ANY = /^spiffe:\/\/[^/]+\/?(.*)$/;

/**
 * `mg-<slug>-<suffix>`. The suffix is never shortened: it is what makes the name unique,
 * so only the slug gives way when the name would exceed MAX_USER_NAME_LENGTH.
 */
export function accountNameFor(principal: string, suffix: string): string {
  if (!SUFFIX.test(suffix)) {
    throw new TypeError('lease account suffix must be 1-32 characters of [a-z0-9]');
  }
  const room = MAX_USER_NAME_LENGTH - MANAGED_USER_PREFIX.length - 1 - suffix.length;
  const slug = trimSeparators(identitySlug(principal).slice(0, room)) || 'unnamed'.slice(0, room);
  return `${MANAGED_USER_PREFIX}${slug}-${suffix}`;
}

/**
 * The part of a principal a human recognises. For Kubernetes-style SPIFFE IDs that is
 * namespace and service account; the trust domain is dropped because it is the same for
 * every workload behind one meshgate and would only eat the length budget.
 */
export function identitySlug(principal: string): string {
  const workload = SPIFFE_WORKLOAD.exec(principal);
  if (workload) return sanitize(`${workload[1] ?? ''}.${workload[2] ?? ''}`);
  const spiffe = SPIFFE_ANY.exec(principal);
  if (spiffe && spiffe[1]) return sanitize(spiffe[1]);
  return sanitize(principal);
}

/** 8 characters of base32 (40 random bits): unique enough per lease, short in PROCESSLIST. */
export function randomLeaseSuffix(): string {
  const bytes = randomBytes(5);
  let bits = 0n;
  for (const byte of bytes) bits = (bits << 8n) | BigInt(byte);
  let out = '';
  for (let shift = 35n; shift >= 0n; shift -= 5n) out += BASE32[Number((bits >> shift) & 31n)];
  return out;
}

/** 256 bits as base64url: strong, and free of quotes and backslashes that SQL or shells mangle. */
export function randomPassword(): string {
  return randomBytes(32).toString('base64url');
}

function sanitize(text: string): string {
  // Decomposing first keeps "müller" readable as "muller" instead of "m.ller".
  const folded = text.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
  return trimSeparators(folded.replace(/[^a-z0-9._-]+/g, '.').replace(/\.{2,}/g, '.'));
}

function trimSeparators(text: string): string {
  return text.replace(/^[.\-_]+|[.\-_]+$/g, '');
}
