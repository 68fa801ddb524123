/**
 * What the lease manager needs from MariaDB: accounts it creates and drops, and its own
 * administrative login. Implemented over a real admin connection in mariadb-accounts.ts;
 * nothing here knows about leases, identities or the state store.
 */
import type { AccountRequirement } from '../transport/mariadb-client-tls.ts';

export type { AccountRequirement } from '../transport/mariadb-client-tls.ts';

export interface ManagedAccount {
  readonly username: string;
  /** Host part of the account, '%' unless configured. */
  readonly userHost: string;
}

/** An account as MariaDB has it now (mysql.user), for telling a takeover from other refusals. */
export interface AccountState {
  readonly plugin: string;
  /** mysql_native_password: `*` and 40 hex digits, SHA1(SHA1(password)). */
  readonly authenticationString: string;
  /** REQUIRE SUBJECT … AND ISSUER …; null when it requires no certificate by name. */
  readonly requirement: AccountRequirement | null;
  /** Its connections open now (processlist). */
  readonly connections: number;
}

export interface MariadbAccounts {
  /**
   * CREATE USER with the password, GRANT the role, SET DEFAULT ROLE for it. All or nothing:
   * when any step fails the account is dropped again before the error is thrown.
   * `requirement`: the account logs in only over TLS with a client certificate of that
   * subject and issuer (meshgate's own, upstream.tls).
   * Throws MG_LEASE_ROLE_UNKNOWN when the role does not exist in MariaDB,
   * MG_UPSTREAM_UNAVAILABLE when MariaDB cannot be reached (after bounded retries with backoff).
   */
  createAccount(account: ManagedAccount, password: string, role: string, requirement?: AccountRequirement | null): Promise<void>;
  /** DROP USER IF EXISTS; idempotent. `killSessions`: also KILL its open connections (revocation, not rotation). */
  dropAccount(account: ManagedAccount, options?: { readonly killSessions?: boolean }): Promise<'dropped' | 'absent'>;
  /** The account as MariaDB has it now; null when it does not exist. */
  inspectAccount(account: ManagedAccount): Promise<AccountState | null>;
  /** Whether the role exists (for a clear error before anything is created). */
  roleExists(role: string): Promise<boolean>;
  /** Accounts whose user name starts with meshgate's prefix (for leak checks and the reaper). */
  listManagedAccounts(): Promise<ManagedAccount[]>;
  /** Sets a new password for meshgate's own admin account (ALTER USER CURRENT_USER()). */
  changeAdminPassword(newPassword: string): Promise<void>;
  close(): Promise<void>;
}
