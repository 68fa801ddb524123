/**
 * MariaDB refused a session lease's password: why? MariaDB answers every refusal alike
 * (1045, on purpose), so meshgate looks at the account as MariaDB has it now and compares it
 * with what meshgate made:
 *
 *   the lease ended by meshgate's hand (revoked here or on another replica, expired)  → ended
 *   the account is gone, the lease still active                                        → dropped elsewhere
 *   its password or TLS requirement differs from what meshgate set                     → compromised
 *   as meshgate made it, but meshgate's own certificate has since changed subject      → certificate changed
 *   as meshgate made it, and meshgate's certificate unchanged                          → unexplained
 *
 * Only `compromised` is a takeover: someone changed the account behind meshgate's back (a
 * lease account may change its own password: `SET PASSWORD`); it is revoked at once, its
 * account dropped and every connection of it killed, and the caller raises the alert.
 */
import { createHash } from 'node:crypto';
import { asMeshgateError } from '../errors/index.ts';
import type { LeaseRecord, StateStore } from '../store/index.ts';
import type { AccountRequirement, AccountState, MariadbAccounts } from './types.ts';

export type RefusalVerdict =
  /** meshgate ended the lease itself (here, on another replica, or by `creds revoke`), or no longer hands it out. */
  | { readonly kind: 'ended' }
  /** The account is gone while its lease was active: an administrator dropped it. The lease is closed on record. */
  | { readonly kind: 'dropped-elsewhere'; readonly lease: LeaseRecord }
  /** meshgate's upstream certificate changed subject since the account was made to require the old one. */
  | { readonly kind: 'certificate-changed'; readonly lease: LeaseRecord }
  /** The account was changed behind meshgate's back: revoked at once, its connections killed. */
  | {
      readonly kind: 'compromised';
      readonly lease: LeaseRecord;
      readonly reason: string;
      /** What meshgate did about it, in words for the alert. */
      readonly action: string;
      readonly connectionsKilled: number;
    }
  /** Nothing meshgate can see explains it (MariaDB's ssl_ca not trusting meshgate's certificate, say). */
  | { readonly kind: 'unexplained'; readonly lease: LeaseRecord; readonly detail: string };

/** What mysql_native_password stores for a password: `*` and SHA1(SHA1(password)) in upper-case hex. */
export function nativePasswordHash(password: string): string {
  const once = createHash('sha1').update(password, 'utf8').digest();
  return '*' + createHash('sha1').update(once).digest('hex').toUpperCase();
}

export function sameRequirement(a: AccountRequirement | null, b: AccountRequirement | null): boolean {
  return a === null || b === null ? a === b : a.subject === b.subject && a.issuer === b.issuer;
}

export type AccountJudgement =
  | { readonly kind: 'absent' }
  | { readonly kind: 'changed'; readonly changes: readonly string[] }
  | { readonly kind: 'certificate-changed' }
  | { readonly kind: 'unchanged' };

/**
 * The account as found against what meshgate made (`password`, `requirement` at creation)
 * and the requirement meshgate's certificate makes now.
 */
export function judgeAccount(
  found: AccountState | null,
  made: { readonly password: string; readonly requirement: AccountRequirement | null },
  current: AccountRequirement | null,
): AccountJudgement {
  if (found === null) return { kind: 'absent' };
  const changes: string[] = [];
  if (found.plugin !== 'mysql_native_password' || found.authenticationString !== nativePasswordHash(made.password)) {
    changes.push('its password was changed outside meshgate');
  }
  if (!sameRequirement(found.requirement, made.requirement)) changes.push('its TLS requirement was changed outside meshgate');
  if (changes.length > 0) return { kind: 'changed', changes };
  return sameRequirement(made.requirement, current) ? { kind: 'unchanged' } : { kind: 'certificate-changed' };
}

/** The refused lease as the lease manager made it; the password never leaves this process. */
export interface RefusedLease {
  readonly lease: LeaseRecord;
  readonly password: string;
  readonly requirement: AccountRequirement | null;
}

export interface RefusalDeps {
  readonly store: Pick<StateStore, 'getLease'>;
  readonly accounts: Pick<MariadbAccounts, 'inspectAccount'>;
  readonly log: { warn(message: string, fields?: Record<string, unknown>): void };
  /** Epoch milliseconds. */
  readonly now: number;
  /** What meshgate's certificate makes accounts require now. */
  readonly current: AccountRequirement | null;
  /** Revokes the lease (compare-and-set in the store, then DROP USER, then KILL when asked). */
  revoke(reason: string, killSessions: boolean): Promise<unknown>;
}

/** Finds out why MariaDB refused the lease and acts: see the table at the top. */
export async function answerRefusal(refused: RefusedLease, deps: RefusalDeps): Promise<RefusalVerdict> {
  const { lease } = refused;
  const stored = await deps.store.getLease(lease.id);
  if (stored === null || stored.state !== 'active' || stored.expiresAt <= deps.now) return { kind: 'ended' };
  const found = await deps.accounts.inspectAccount({ username: lease.username, userHost: lease.userHost });
  const judgement = judgeAccount(found, refused, deps.current);
  const close = (reason: string) =>
    deps.revoke(reason, false).catch((error: unknown) => {
      deps.log.warn('cannot close a refused lease now; the reaper will', { lease: lease.id, error: asMeshgateError(error).message });
    });
  switch (judgement.kind) {
    case 'absent':
      deps.log.warn('a lease account was dropped outside meshgate; its sessions get a new lease', { lease: lease.id, username: lease.username });
      await close('its account was dropped outside meshgate');
      return { kind: 'dropped-elsewhere', lease };
    case 'certificate-changed':
      await close("meshgate's upstream certificate changed");
      return { kind: 'certificate-changed', lease };
    case 'unchanged': {
      const detail = "MariaDB refuses the account as meshgate made it: check that MariaDB's ssl_ca trusts upstream.tls.cert, and that the account's host admits meshgate";
      deps.log.warn('MariaDB refused a lease account that is as meshgate made it', { lease: lease.id, username: lease.username, detail });
      await close('MariaDB refused its password');
      return { kind: 'unexplained', lease, detail };
    }
    case 'changed': {
      const reason = judgement.changes.join(' and ');
      const killed = found?.connections ?? 0;
      try {
        // Killing is what ends a taker's sessions: MariaDB keeps the connections of a dropped account.
        await deps.revoke(`compromised: ${reason}`, true);
      } catch (error) {
        // Raised all the same, saying what is left to do.
        const action = `revoking failed (${asMeshgateError(error).message}): revoke it now with \`meshgate creds revoke --lease ${lease.id}\``;
        return { kind: 'compromised', lease, reason, action, connectionsKilled: 0 };
      }
      return { kind: 'compromised', lease, reason, action: `account dropped, ${killed} connection${killed === 1 ? '' : 's'} killed`, connectionsKilled: killed };
    }
  }
}
