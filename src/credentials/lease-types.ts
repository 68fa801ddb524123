/**
 * The shapes of credential leases (src/credentials/leases.ts re-exports them): what the lease
 * manager is built from, and the credentials it hands out.
 */
import type { LeaseRecord, StateStore } from '../store/index.ts';
import type { AccountRequirement, MariadbAccounts } from './types.ts';

export interface LeaseLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface LeaseTimings {
  /** Session leases: renewed by this much while in use, never past maxTtlMs from creation. */
  readonly sessionTtlMs: number;
  readonly sessionMaxTtlMs: number;
  /** Issued (CI) leases: the default and the ceiling a caller may ask for. */
  readonly issuedTtlMs: number;
  readonly issuedMaxTtlMs: number;
}

export interface LeaseManagerOptions {
  readonly store: StateStore;
  readonly accounts: MariadbAccounts;
  /** This replica's id, written on every record it touches. */
  readonly owner: string;
  readonly timings: LeaseTimings;
  /** Live issued (direct) leases one identity may hold at once; absent: no cap. */
  readonly issuedMaxLive?: number;
  /** Host part of created accounts. */
  readonly userHost?: string;
  readonly log: LeaseLog;
  readonly now?: () => number;
  /** Called when a session lease stops being usable, so pooled connections on it close. */
  readonly onLeaseEnded?: (lease: LeaseRecord) => void;
  /** Called when the sweep drops a lease at its expiry (or finishes one a crash left), for the audit. */
  readonly onReaped?: (lease: LeaseRecord, reason: string) => void;
  /**
   * The client certificate session accounts must log in with (upstream.tls), read at each
   * creation; absent or null: none. Throws when meshgate has a certificate but none MariaDB
   * can require, so no account is made weaker than configured.
   */
  readonly requirement?: () => AccountRequirement | null;
}

/** What a session logs in with. The password exists only here, in this process. */
export interface SessionCredential {
  readonly lease: LeaseRecord;
  readonly username: string;
  readonly password: string;
  /** The certificate the account requires (REQUIRE SUBJECT … AND ISSUER …); null: none. */
  readonly requirement: AccountRequirement | null;
}

export interface IssuedCredential {
  readonly lease: LeaseRecord;
  readonly username: string;
  readonly password: string;
  readonly expiresAt: number;
}

export interface RevokeSelector {
  readonly leaseId?: string;
  readonly principal?: string;
  readonly role?: string;
}

/** What the lease manager did, by what and how it ended: plain counts metrics read at scrape time. */
export type LeaseOperation = 'create' | 'issue' | 'renew' | 'revoke';
export type LeaseOperationCounts = Record<LeaseOperation, { completed: number; failed: number }>;

export function newOperationCounts(): LeaseOperationCounts {
  return { create: { completed: 0, failed: 0 }, issue: { completed: 0, failed: 0 }, renew: { completed: 0, failed: 0 }, revoke: { completed: 0, failed: 0 } };
}
