/**
 * Where a session's upstream connection comes from: the account (a static per-role account
 * from the config, or a dynamic lease made for this identity), then an idle pooled
 * connection for that account, or a fresh login.
 */
import { mgError } from '../../errors/index.ts';
import type { Identity } from '../../identity/index.ts';
import type { LeaseManager } from '../../credentials/index.ts';
import type { UpstreamPool } from './pool.ts';
import { connectUpstream, type UpstreamConnection, type UpstreamLogin, type UpstreamTarget } from './upstream.ts';

export interface UpstreamAccount {
  readonly user: string;
  readonly password: string;
  /** The lease the account belongs to; null for a static account. */
  readonly leaseId: string | null;
}

export interface AccountSource {
  accountFor(identity: Identity, role: string, database: string | null): Promise<UpstreamAccount>;
  hold(leaseId: string | null): void;
  release(leaseId: string | null): void;
  /** MariaDB refused the account: it was revoked elsewhere; do not hand it out again. */
  invalidate(leaseId: string | null): void;
  /**
   * The login failed: an account created for this very login, and given to no one else, goes
   * now. Waited for, so the client hears of the failure once nothing of it is left.
   */
  abandon(leaseId: string | null, reason: string): Promise<void>;
}

export type SessionLogin = Omit<UpstreamLogin, 'user' | 'password'>;

/** One session's use of an upstream connection. */
export interface UpstreamUse {
  readonly connection: UpstreamConnection;
  readonly account: UpstreamAccount;
  /** `reusable`: the connection, when the session ended between commands; else null. */
  finish(reusable: UpstreamConnection | null): void;
}

export class UpstreamSource {
  constructor(
    private readonly target: UpstreamTarget,
    private readonly accounts: AccountSource,
    private readonly pool: UpstreamPool | null,
  ) {}

  async open(identity: Identity, role: string, login: SessionLogin): Promise<UpstreamUse> {
    let account = await this.accounts.accountFor(identity, role, login.database);
    let full: UpstreamLogin = { ...login, user: account.user, password: account.password };
    let connection = (await this.pool?.take(full)) ?? null;
    if (connection === null) {
      try {
        try {
          connection = await connectUpstream(this.target, full);
        } catch (error) {
          // A lease revoked by another replica or a `creds revoke` refuses its login before
          // this replica's sweep notices: take a new lease once.
          if (account.leaseId === null || (error as { code?: string }).code !== 'MG_UPSTREAM_AUTH_FAILED') throw error;
          this.accounts.invalidate(account.leaseId);
          account = await this.accounts.accountFor(identity, role, login.database);
          full = { ...login, user: account.user, password: account.password };
          connection = await connectUpstream(this.target, full);
        }
      } catch (error) {
        // Only a lease made for this login goes (the path that created one pays for it).
        await this.accounts.abandon(account.leaseId, `its first login failed: ${(error as { code?: string }).code ?? 'error'}`);
        throw error;
      }
      if (this.pool !== null) this.pool.stats.opened++;
    }
    this.accounts.hold(account.leaseId);
    let finished = false;
    return {
      connection,
      account,
      finish: (reusable) => {
        if (finished) return;
        finished = true;
        this.accounts.release(account.leaseId);
        if (reusable !== null && this.pool !== null) this.pool.give(full, reusable, account.leaseId);
        else if (reusable !== null) reusable.socket.destroy();
      },
    };
  }
}

/** The first engine's way: one configured account per role, shared by every identity. */
export function staticAccounts(accounts: ReadonlyMap<string, { readonly user: string; readonly password: string }>): AccountSource {
  return {
    async accountFor(_identity, role) {
      const account = accounts.get(role);
      if (account === undefined) {
        throw mgError(
          'MG_UPSTREAM_AUTH_FAILED',
          `policy maps this identity to role '${role}', but the meshgate config has no upstream account for it; operator: add upstream.roles.${role}, or use dynamic credentials (upstream.credentials)`,
        );
      }
      return { user: account.user, password: account.password, leaseId: null };
    },
    hold() {},
    release() {},
    invalidate() {},
    async abandon() {},
  };
}

/** Per-identity MariaDB accounts from leases. */
export function leasedAccounts(leases: LeaseManager): AccountSource {
  return {
    async accountFor(identity, role, database) {
      const credential = await leases.sessionCredential(identity, role, database);
      return { user: credential.username, password: credential.password, leaseId: credential.lease.id };
    },
    hold: (leaseId) => leaseId !== null && leases.hold(leaseId),
    release: (leaseId) => leaseId !== null && leases.release(leaseId),
    invalidate: (leaseId) => leaseId !== null && leases.invalidate(leaseId),
    async abandon(leaseId, reason) {
      if (leaseId !== null) await leases.abandon(leaseId, reason);
    },
  };
}
