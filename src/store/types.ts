/**
 * The state meshgate keeps beyond one process: credential leases. The embedded store (a
 * file, nothing to set up) serves one host; PostgreSQL serves several replicas. Every
 * state change is a compare-and-set, so two replicas can never both revoke one lease,
 * and a lease created by one replica is renewed or revoked by any.
 *
 * Passwords are never stored: a session lease's password lives only in the memory of the
 * process that made it, and after a crash the account it names is simply dropped.
 */

/**
 * creating ──▶ active ──▶ revoking ──▶ revoked
 *     └───────────────────────▲
 * `creating` is written BEFORE the MariaDB account exists, so a crash between the two
 * leaves a record the reaper finds; `revoking` is the claim a replica takes before it
 * drops the account.
 */
export type LeaseState = 'creating' | 'active' | 'revoking' | 'revoked';

/** `session`: the upstream account meshgate's own sessions use; `issued`: handed to a caller (CI) for a direct connection. */
export type LeasePurpose = 'session' | 'issued';

export interface LeaseRecord {
  /** `lease_` + 24 base64url characters; unguessable, safe to print. */
  readonly id: string;
  readonly purpose: LeasePurpose;
  /** The identity the lease was made for (SPIFFE ID, or the token identity's principal). */
  readonly principal: string;
  readonly role: string;
  /** The database the caller asked for, when it named one. */
  readonly database: string | null;
  /** MariaDB account: 'username'@'host'. */
  readonly username: string;
  readonly userHost: string;
  readonly state: LeaseState;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  readonly expiresAt: number;
  /** Renewals never move expiresAt past this. */
  readonly maxExpiresAt: number;
  /** Changes on every write; a stale `revoking` claim (a replica died mid-revoke) is found by it. */
  readonly updatedAt: number;
  readonly revokedAt: number | null;
  readonly revokeReason: string | null;
  /** The replica that last wrote the record (its id is logged at start). */
  readonly owner: string;
}

export interface LeaseFilter {
  readonly states?: readonly LeaseState[];
  readonly principal?: string;
  readonly role?: string;
  readonly purpose?: LeasePurpose;
  /** Only leases whose expiresAt is before this instant. */
  readonly expiresBefore?: number;
  /** Only leases whose updatedAt is before this instant (stale claims). */
  readonly updatedBefore?: number;
}

export type LeasePatch = Partial<Pick<LeaseRecord, 'expiresAt' | 'revokedAt' | 'revokeReason' | 'owner' | 'updatedAt'>>;

export interface StateStore {
  readonly kind: 'embedded' | 'postgres';
  /** Where it lives, for logs and errors (a path, or host/db/schema; never a password). */
  readonly location: string;
  /** Inserts a new record; throws MG_STORE_CONFLICT when the id exists. */
  createLease(record: LeaseRecord): Promise<void>;
  getLease(id: string): Promise<LeaseRecord | null>;
  /** Sorted by createdAt ascending. */
  listLeases(filter?: LeaseFilter): Promise<LeaseRecord[]>;
  /**
   * Compare-and-set: moves the lease to `to` and applies `patch` only when its current state
   * is one of `from` (and, when `updatedBefore` is given, its updatedAt is older than that).
   * Returns the new record, or null when the lease is absent or another writer got there
   * first. `updatedAt` is set to now unless the patch gives it.
   */
  transitionLease(
    id: string,
    from: readonly LeaseState[],
    to: LeaseState,
    patch?: LeasePatch,
    options?: { readonly updatedBefore?: number },
  ): Promise<LeaseRecord | null>;
  /** Removes revoked leases revoked before `before`; returns how many. History has a limit. */
  pruneRevoked(before: number): Promise<number>;
  close(): Promise<void>;
}
