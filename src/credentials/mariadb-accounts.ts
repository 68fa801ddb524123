/**
 * MariadbAccounts over a real admin login: creates and drops the per-lease accounts.
 *
 * Minimal privileges for meshgate's admin account on MariaDB 10.11 (verified against the
 * server; nothing else is needed, in particular neither GRANT OPTION nor SUPER):
 *
 *   CREATE USER 'meshgate_admin'@'<meshgate host>' IDENTIFIED BY '...';
 *   GRANT CREATE USER ON *.* TO 'meshgate_admin'@'<meshgate host>';             -- CREATE/DROP USER, ALTER USER for its own password
 *   GRANT SELECT ON mysql.user TO 'meshgate_admin'@'<meshgate host>';           -- role check, existence check, listing leases
 *   GRANT PROCESS, CONNECTION ADMIN ON *.* TO 'meshgate_admin'@'<meshgate host>'; -- see and KILL lease sessions on revocation
 *   GRANT <each lease role> TO 'meshgate_admin'@'<meshgate host>' WITH ADMIN OPTION; -- to GRANT the role to lease accounts
 *
 * `SET DEFAULT ROLE r FOR other_user` needs UPDATE on the whole `mysql` database (table-level
 * grants on mysql.global_priv or mysql.roles_mapping are not enough), and UPDATE on mysql.*
 * lets an account rewrite any account's privileges — root in all but name. So meshgate does
 * not ask for it: when the server refuses SET DEFAULT ROLE ... FOR, it logs in once as the new
 * lease account and runs SET DEFAULT ROLE for itself, which needs no privilege at all. That
 * login must be allowed from meshgate's address by the account host (`userHost`, default '%').
 */
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { isMeshgateError, mgError } from '../errors/index.ts';
import type { MariadbClientTls } from '../transport/mariadb-client-tls.ts';
import { MANAGED_USER_PREFIX } from './account-names.ts';
import { backoff, describe, ER, errnoOf, isConnectionError, LOGIN_DENIED, PRIVILEGE_DENIED, roleUnknown, scrub, type RetryOptions, type SqlError } from './mariadb-errors.ts';
import type { AccountRequirement, AccountState, ManagedAccount, MariadbAccounts } from './types.ts';

export { MANAGED_USER_PREFIX } from './account-names.ts';

export type { RetryOptions } from './mariadb-errors.ts';

export interface MariadbAccountsOptions {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly connectTimeoutMs?: number;
  /**
   * Host part for the accounts the lease manager creates ('%' by default), offered back as
   * `userHost` so callers build ManagedAccount from one setting. listManagedAccounts still
   * reports accounts of every host: a leak is a leak whatever its host.
   */
  readonly userHost?: string;
  readonly retry?: RetryOptions;
  /**
   * Where the admin password lives, read again when MariaDB refuses the admin login: another
   * process (`meshgate creds rotate-root`) may have rotated it. Null when it is unreadable.
   */
  readonly rereadPassword?: () => Promise<string | null>;
  /** TLS with meshgate's client certificate (upstream.tls), for the admin login and the new accounts' own. */
  readonly tls?: MariadbClientTls | null;
}

const DEFAULT_RETRY: RetryOptions = { attempts: 4, baseDelayMs: 100, maxDelayMs: 2000 };
const ROLE_NAME = /^[A-Za-z0-9_$]{1,64}$/;
/**
 * mysql.user.is_role is computed by the view, so it is COERCIBLE in the view's collation
 * (utf8mb4_general_ci); a plain 'Y' in mysql2's utf8mb4_unicode_ci is COERCIBLE too, and
 * MariaDB refuses to compare the two (ER_CANT_AGGREGATE_2COLLATIONS). Binary works with any.
 */
const IS_ROLE = "is_role = BINARY 'Y'";
const IS_ACCOUNT = "is_role = BINARY 'N'";

/** A pool and the operations still using it, so a password change never cuts one off. */
interface PoolSlot {
  readonly pool: Pool;
  active: number;
  retired: boolean;
}

export interface AdminMariadbAccounts extends MariadbAccounts {
  /** The configured host part for new lease accounts. */
  readonly userHost: string;
}

/** Opens nothing yet: the pool connects on first use, so a down MariaDB does not fail startup. */
export function openMariadbAccounts(options: MariadbAccountsOptions): AdminMariadbAccounts {
  return new AdminAccounts(options);
}

class AdminAccounts implements AdminMariadbAccounts {
  readonly userHost: string;
  private readonly options: MariadbAccountsOptions;
  private readonly retry: RetryOptions;
  private password: string;
  /** Every admin password this object has held, so none can surface in an error. */
  private readonly adminSecrets: string[];
  private slot: PoolSlot;
  private readonly draining = new Set<Promise<void>>();
  /** Learned once: the admin may not SET DEFAULT ROLE ... FOR others (the normal, safe setup). */
  private defaultRoleBySelf = false;
  private closed = false;
  private readonly unsubscribeTls: () => void;

  constructor(options: MariadbAccountsOptions) {
    this.options = options;
    this.userHost = options.userHost ?? '%';
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.password = options.password;
    this.adminSecrets = [options.password];
    this.slot = this.newSlot();
    // A renewed certificate: new admin connections present it; running operations finish on theirs.
    this.unsubscribeTls = options.tls?.subscribe(() => this.usePassword(this.password)) ?? (() => undefined);
  }

  async createAccount(account: ManagedAccount, password: string, role: string, requirement?: AccountRequirement | null): Promise<void> {
    const quotedRole = quoteRole(role);
    if (!(await this.roleExists(role))) throw roleUnknown(role);
    const user = [account.username, account.userHost];
    await this.withAdmin('create a lease account', [password], async (conn, attempt) => {
      // User names are unique per lease, so an account already there on a retry is our own
      // CREATE USER whose reply was lost; IF NOT EXISTS could instead adopt a foreign account.
      if (attempt > 1) await conn.query('DROP USER IF EXISTS ?@?', user);
      if (requirement === undefined || requirement === null) await conn.query('CREATE USER ?@? IDENTIFIED BY ?', [...user, password]);
      else await conn.query('CREATE USER ?@? IDENTIFIED BY ? REQUIRE SUBJECT ? AND ISSUER ?', [...user, password, requirement.subject, requirement.issuer]);
      try {
        await conn.query(`GRANT ${quotedRole} TO ?@?`, user);
        await this.setDefaultRole(conn, account, password, quotedRole);
      } catch (error) {
        // After a connection error the retry drops the account first; otherwise undo here.
        if (!isConnectionError(error)) await conn.query('DROP USER IF EXISTS ?@?', user).catch(() => undefined);
        if (errnoOf(error) === ER.invalidRole) throw roleUnknown(role, error);
        throw error;
      }
    });
  }

  async dropAccount(account: ManagedAccount, options?: { readonly killSessions?: boolean }): Promise<'dropped' | 'absent'> {
    const user = [account.username, account.userHost];
    // Kept across attempts: a retried drop must still report an account the lost attempt removed.
    let existed = false;
    await this.withAdmin('drop a lease account', [], async (conn) => {
      const [rows] = await conn.query<RowDataPacket[]>(
        `SELECT 1 FROM mysql.user WHERE User = ? AND Host = ? AND ${IS_ACCOUNT}`, user);
      existed ||= rows.length > 0;
      // Dropping before killing closes the door first, so no new session slips in between.
      await conn.query('DROP USER IF EXISTS ?@?', user);
      if (options?.killSessions) await killSessionsOf(conn, account.username);
    });
    return existed ? 'dropped' : 'absent';
  }

  async inspectAccount(account: ManagedAccount): Promise<AccountState | null> {
    return this.withAdmin('inspect a lease account', [], async (conn) => {
      const [rows] = await conn.query<RowDataPacket[]>(
        `SELECT plugin, authentication_string, ssl_type, x509_subject, x509_issuer FROM mysql.user WHERE User = ? AND Host = ? AND ${IS_ACCOUNT}`,
        [account.username, account.userHost]);
      const row = rows[0];
      if (row === undefined) return null;
      const [processes] = await conn.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = ?', [account.username]);
      const text = (value: unknown) => (value === null || value === undefined ? '' : String(value));
      const [subject, issuer] = [text(row['x509_subject']), text(row['x509_issuer'])];
      return {
        plugin: text(row['plugin']),
        authenticationString: text(row['authentication_string']),
        requirement: text(row['ssl_type']) === 'SPECIFIED' && (subject !== '' || issuer !== '') ? { subject, issuer } : null,
        connections: Number(processes[0]?.['n'] ?? 0),
      };
    });
  }

  async roleExists(role: string): Promise<boolean> {
    return this.withAdmin('check a role', [], async (conn) => {
      const [rows] = await conn.query<RowDataPacket[]>(
        `SELECT 1 FROM mysql.user WHERE User = ? AND ${IS_ROLE}`, [role]);
      return rows.length > 0;
    });
  }

  async listManagedAccounts(): Promise<ManagedAccount[]> {
    return this.withAdmin('list lease accounts', [], async (conn) => {
      const [rows] = await conn.query<RowDataPacket[]>(
        `SELECT User AS username, Host AS userHost FROM mysql.user WHERE User LIKE ? AND ${IS_ACCOUNT} ORDER BY User, Host`,
        [`${escapeLike(MANAGED_USER_PREFIX)}%`]);
      return rows.map((row) => ({ username: String(row['username']), userHost: String(row['userHost']) }));
    });
  }

  async changeAdminPassword(newPassword: string): Promise<void> {
    this.adminSecrets.push(newPassword);
    let sent = false;
    let failure: unknown;
    try {
      await this.withAdmin("change meshgate's admin password", [newPassword], async (conn) => {
        // MariaDB 10.11 answers OK to `ALTER USER CURRENT_USER() IDENTIFIED BY ...` and changes
        // nothing (verified on 10.11.19), so name the account explicitly.
        const [[me]] = await conn.query<RowDataPacket[]>('SELECT CURRENT_USER() AS account');
        const account = String(me?.['account'] ?? '');
        const at = account.lastIndexOf('@');
        sent = true;
        await conn.query('ALTER USER ?@? IDENTIFIED BY ?', [account.slice(0, at), account.slice(at + 1), newPassword]);
      });
    } catch (error) {
      // A lost reply to ALTER USER looks like a refused login on the retry: the change may
      // have landed, which the login with the new password below finds out.
      if (!(sent && isMeshgateError(error) && error.code === 'MG_UPSTREAM_AUTH_FAILED')) throw error;
      failure = error;
    }
    const previous = this.password;
    this.usePassword(newPassword);
    try {
      // Proves the server took the password before the pool holding the old one is let go.
      await this.withAdmin('log in with the new admin password', [], (conn) => conn.query('SELECT 1'));
    } catch (error) {
      // Only a refused login means the old password is still the valid one; when MariaDB just
      // went away after answering OK, the new password is the one that will work.
      if (!(isMeshgateError(error) && error.code === 'MG_UPSTREAM_AUTH_FAILED')) throw error;
      this.usePassword(previous);
      throw failure ?? mgError('MG_UPSTREAM_AUTH_FAILED',
        `${this.where()} accepted the new password for meshgate's admin '${this.options.user}' but refuses it at login: ` +
        'the old password stays in use; check the account with SHOW GRANTS and its authentication plugin, then retry', error);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribeTls();
    this.retire(this.slot);
    await Promise.all([...this.draining]);
  }

  private async setDefaultRole(conn: PoolConnection, account: ManagedAccount, password: string, quotedRole: string): Promise<void> {
    if (!this.defaultRoleBySelf) {
      try {
        await conn.query(`SET DEFAULT ROLE ${quotedRole} FOR ?@?`, [account.username, account.userHost]);
        return;
      } catch (error) {
        if (errnoOf(error) !== ER.dbAccessDenied) throw error;
        this.defaultRoleBySelf = true;
      }
    }
    let own: mysql.Connection;
    try {
      own = await mysql.createConnection({
        host: this.options.host, port: this.options.port, user: account.username, password,
        connectTimeout: this.options.connectTimeoutMs ?? 5000,
        ...this.options.tls?.mysql2(this.options.host, this.options.port),
      });
    } catch (error) {
      if (!LOGIN_DENIED.has(errnoOf(error) ?? 0)) throw error;
      throw mgError('MG_UPSTREAM_AUTH_FAILED',
        `meshgate could not log in as the new lease account '${account.username}'@'${account.userHost}' to set its default role ` +
        `(${(error as SqlError).code}): let the account host admit meshgate's address, or grant meshgate's admin ` +
        'UPDATE ON mysql.* so it can SET DEFAULT ROLE ... FOR the account (that privilege is nearly root; prefer the first)',
        scrub(error, [password, ...this.adminSecrets]));
    }
    try {
      await own.query(`SET DEFAULT ROLE ${quotedRole}`);
    } finally {
      await own.end().catch(() => own.destroy());
    }
  }

  /**
   * Runs `work` on an admin connection, retrying connection failures with backoff. `work`
   * must be safe to run again from the start; `attempt` tells it that an earlier run may
   * have partly happened on the server.
   */
  private async withAdmin<T>(what: string, secrets: readonly string[], work: (conn: PoolConnection, attempt: number) => Promise<T>): Promise<T> {
    const hidden = [...secrets, ...this.adminSecrets];
    const attempts = Math.max(1, this.retry.attempts);
    for (let attempt = 1; ; attempt++) {
      // Checked on every attempt: close() may land while a retry waits.
      if (this.closed) throw mgError('MG_INTERNAL', 'a bug in meshgate: the MariaDB account manager was used after close()');
      const slot = this.slot;
      slot.active++;
      let conn: PoolConnection | undefined;
      try {
        conn = await slot.pool.getConnection();
        const result = await work(conn, attempt);
        conn.release();
        return result;
      } catch (error) {
        scrub(error, hidden);
        if (conn) {
          if (isConnectionError(error)) conn.destroy();
          else conn.release();
        }
        if (isMeshgateError(error)) throw error;
        // Without a connection the error is the login's; with one, 1698 is a refused GRANT.
        if (!conn && LOGIN_DENIED.has(errnoOf(error) ?? 0)) {
          if (!(await this.passwordChangedElsewhere())) throw this.loginRefused(error);
          continue;
        }
        if (!isConnectionError(error)) {
          if (PRIVILEGE_DENIED.has(errnoOf(error) ?? 0)) throw this.privilegeMissing(what, error);
          throw error;
        }
        if (attempt >= attempts) throw this.unreachable(what, attempts, error);
      } finally {
        slot.active--;
        if (slot.retired && slot.active === 0) this.drain(slot);
      }
      await sleep(backoff(this.retry, attempt));
    }
  }

  /** True when the configured file now holds another password, which is then used. */
  private async passwordChangedElsewhere(): Promise<boolean> {
    const fresh = await this.options.rereadPassword?.().catch(() => null);
    if (fresh === undefined || fresh === null || fresh === '' || fresh === this.password) return false;
    this.adminSecrets.push(fresh);
    this.usePassword(fresh);
    return true;
  }

  private newSlot(): PoolSlot {
    const { host, port, user, connectTimeoutMs } = this.options;
    const pool = mysql.createPool({
      host, port, user, password: this.password, connectTimeout: connectTimeoutMs ?? 5000,
      connectionLimit: 2, maxIdle: 2, idleTimeout: 60_000, enableKeepAlive: true, multipleStatements: false,
      ...this.options.tls?.mysql2(this.options.host, this.options.port),
    });
    return { pool, active: 0, retired: false };
  }

  private usePassword(password: string): void {
    this.password = password;
    const old = this.slot;
    this.slot = this.newSlot();
    this.retire(old);
  }

  private retire(slot: PoolSlot): void {
    slot.retired = true;
    if (slot.active === 0) this.drain(slot);
  }

  private drain(slot: PoolSlot): void {
    const ended: Promise<void> = slot.pool.end().catch(() => undefined).finally(() => this.draining.delete(ended));
    this.draining.add(ended);
  }

  private where(): string {
    return `MariaDB at ${this.options.host}:${this.options.port}`;
  }

  private unreachable(what: string, attempts: number, error: unknown): Error {
    return mgError('MG_UPSTREAM_UNAVAILABLE',
      `cannot reach ${this.where()} to ${what} (${describe(error)}, ${attempts} attempt${attempts === 1 ? '' : 's'}): ` +
      'check that MariaDB is running there and reachable from meshgate, then retry', error);
  }

  private loginRefused(error: unknown): Error {
    return mgError('MG_UPSTREAM_AUTH_FAILED',
      `${this.where()} refused meshgate's admin login as '${this.options.user}' (${describe(error)}): ` +
      'check upstream.credentials.admin (user name and password) and that the account may connect from meshgate\'s host', error);
  }

  private privilegeMissing(what: string, error: unknown): Error {
    return mgError('MG_UPSTREAM_AUTH_FAILED',
      `meshgate's admin account '${this.options.user}' may not ${what} on ${this.where()} (${describe(error)}): grant it ` +
      'CREATE USER, SELECT ON mysql.user, PROCESS, CONNECTION ADMIN and each lease role WITH ADMIN OPTION ' +
      '(see upstream.credentials.admin in the README)', error);
  }
}

async function killSessionsOf(conn: PoolConnection, username: string): Promise<void> {
  const [rows] = await conn.query<RowDataPacket[]>('SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?', [username]);
  for (const row of rows) {
    try {
      await conn.query('KILL CONNECTION ?', [Number(row['ID'])]);
    } catch (error) {
      // The session may have ended on its own between the listing and the KILL.
      if (errnoOf(error) !== ER.noSuchThread) throw error;
    }
  }
}

function quoteRole(role: string): string {
  if (!ROLE_NAME.test(role)) {
    throw mgError('MG_LEASE_ROLE_UNKNOWN',
      `'${role.slice(0, 80)}' is not a MariaDB role name meshgate accepts (1-64 characters of A-Z a-z 0-9 _ $): ` +
      "fix the policy's to.mariadb.role");
  }
  return '`' + role + '`';
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => '\\' + c);
}
