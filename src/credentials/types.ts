/**
 * What the lease manager needs from MariaDB: accounts it creates and drops, and its own
 * administrative login. Implemented over a real admin connection in mariadb-accounts.ts;
 * nothing here knows about leases, identities or the state store.
 */

export interface ManagedAccount {
  readonly username: string;
  /** Host part of the account, '%' unless configured. */
  readonly userHost: string;
}

export interface MariadbAccounts {
  /**
   * CREATE USER with the password, GRANT the role, SET DEFAULT ROLE for it. All or nothing:
   * when any step fails the account is dropped again before the error is thrown.
   * Throws MG_LEASE_ROLE_UNKNOWN when the role does not exist in MariaDB,
   * MG_UPSTREAM_UNAVAILABLE when MariaDB cannot be reached (after bounded retries with backoff).
   */
  createAccount(account: ManagedAccount, password: string, role: string): Promise<void>;
  /** DROP USER IF EXISTS; idempotent. `killSessions`: also KILL its open connections (revocation, not rotation). */
  dropAccount(account: ManagedAccount, options?: { readonly killSessions?: boolean }): Promise<'dropped' | 'absent'>;
  /** Whether the role exists (for a clear error before anything is created). */
  roleExists(role: string): Promise<boolean>;
  /** Accounts whose user name starts with meshgate's prefix (for leak checks and the reaper). */
  listManagedAccounts(): Promise<ManagedAccount[]>;
  /** Sets a new password for meshgate's own admin account (ALTER USER CURRENT_USER()). */
  changeAdminPassword(newPassword: string): Promise<void>;
  close(): Promise<void>;
}
