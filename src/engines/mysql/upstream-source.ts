/**
 * Where a session's upstream connection comes from: the account (a static per-role account
 * from the config, or a dynamic lease made for this identity), then an idle pooled
 * connection for that account, or a fresh login.
 */
import { mgError } from '../../errors/index.ts';
import type { Identity } from '../../identity/index.ts';
import type { LeaseManager, RefusalVerdict } from '../../credentials/index.ts';
import { classifyLoginFailure } from './login-failure.ts';
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
  /**
   * MariaDB refused the account's password: stop handing it out and find out why. A lease
   * changed behind meshgate's back comes back `compromised`, already revoked.
   */
  refused(leaseId: string): Promise<RefusalVerdict>;
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

/** A lease found compromised at a session's login, already revoked: the engine records the alert. */
export interface CompromisedLease {
  readonly sessionId: string;
  readonly identity: Identity;
  readonly verdict: Extract<RefusalVerdict, { kind: 'compromised' }>;
}

export class UpstreamSource {
  constructor(
    private readonly target: UpstreamTarget,
    private readonly accounts: AccountSource,
    private readonly pool: UpstreamPool | null,
    private readonly onCompromised: (found: CompromisedLease) => void = () => undefined,
  ) {}

  async open(identity: Identity, role: string, login: SessionLogin, sessionId: string): Promise<UpstreamUse> {
    let account = await this.accounts.accountFor(identity, role, login.database);
    let full: UpstreamLogin = { ...login, user: account.user, password: account.password };
    let connection: UpstreamConnection;
    try {
      try {
        connection = await this.connect(full, account.leaseId);
      } catch (error) {
        // A refused lease password: the lease ended elsewhere (another replica's revoke, an
        // expiry this replica's sweep has not seen), or someone changed the account behind
        // meshgate's back. Either way it is not used again; the session takes a new lease, once.
        if (account.leaseId === null || !passwordRefused(error)) throw error;
        const verdict = await this.accounts.refused(account.leaseId);
        if (verdict.kind === 'compromised') this.onCompromised({ sessionId, identity, verdict });
        account = await this.accounts.accountFor(identity, role, login.database);
        full = { ...login, user: account.user, password: account.password };
        connection = await this.connect(full, account.leaseId);
      }
    } catch (error) {
      // Only a lease made for this login goes (the path that created one pays for it).
      await this.accounts.abandon(account.leaseId, `its first login failed: ${(error as { code?: string }).code ?? 'error'}`);
      throw error;
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

  /** An idle connection renewed for this login, or a fresh login. */
  private async connect(login: UpstreamLogin, leaseId: string | null): Promise<UpstreamConnection> {
    let pooled: UpstreamConnection | null = null;
    try {
      pooled = (await this.pool?.take(login)) ?? null;
    } catch (error) {
      // A static account's refusal is the operator's to fix: the login below says how.
      if (leaseId !== null) throw error;
    }
    if (pooled !== null) return pooled;
    const connection = await connectUpstream(this.target, login);
    if (this.pool !== null) this.pool.stats.opened++;
    return connection;
  }
}

/**
 * MariaDB refused meshgate's login or renewal as a lease account: 1045 (the password, or the
 * certificate the account requires), or 1698, which MariaDB 10.11 also answers when the
 * account was dropped a moment ago (another replica's revoke). A lease account has a password
 * meshgate set, never socket-only authentication, so 1698 cannot mean that here.
 */
function passwordRefused(error: unknown): boolean {
  if ((error as { code?: string }).code !== 'MG_UPSTREAM_AUTH_FAILED') return false;
  const { kind } = classifyLoginFailure(error);
  return kind === 'password-refused' || kind === 'socket-auth-only';
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
    refused: async () => ({ kind: 'ended' }),
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
    refused: (leaseId) => leases.refused(leaseId),
    async abandon(leaseId, reason) {
      if (leaseId !== null) await leases.abandon(leaseId, reason);
    },
  };
}
