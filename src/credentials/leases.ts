/**
 * Credential leases: a MariaDB account per (identity, role), created on demand, renewed
 * while in use, rotated before its max TTL, and dropped when it ends.
 *
 *   store: creating ──▶ MariaDB: CREATE USER + GRANT ──▶ store: active
 *   revoke: store CAS active→revoking (one replica wins) ──▶ DROP USER ──▶ store: revoked
 *
 * The record exists before the account does and outlives it, so a crash at any point
 * leaves something the reaper finishes; a password is never written anywhere.
 */
import { randomBytes } from 'node:crypto';
import { asMeshgateError, mgError } from '../errors/index.ts';
import type { Identity } from '../identity/index.ts';
import type { LeaseFilter, LeasePurpose, LeaseRecord } from '../store/index.ts';
import { accountNameFor, randomLeaseSuffix, randomPassword } from './account-names.ts';
import { IssuedCap } from './issued-cap.ts';
import { answerRefusal, sameRequirement, type RefusalVerdict } from './lease-refusal.ts';
import { reapLeases } from './lease-sweep.ts';
import { newOperationCounts, type IssuedCredential, type LeaseManagerOptions, type LeaseOperationCounts, type RevokeSelector, type SessionCredential } from './lease-types.ts';
import { roleUnknown } from './mariadb-errors.ts';
import type { AccountRequirement } from './types.ts';

export type { IssuedCredential, LeaseLog, LeaseOperation, LeaseOperationCounts, LeaseManagerOptions, LeaseTimings, RevokeSelector, SessionCredential } from './lease-types.ts';

/** Revoked leases stay listed (`creds list --all`) this long, then are pruned. */
const REVOKED_HISTORY_MS = 7 * 86_400_000;

interface CachedSession {
  readonly credential: SessionCredential;
  /** Sessions currently logged in through it; renewal runs while this is above zero. */
  holders: number;
  /** Calls of sessionCredential that got it, the one that created it included. */
  handedOut: number;
  expiresAt: number;
}

export class LeaseManager {
  private readonly now: () => number;
  /** By principal and role: what the next session of that pair uses. */
  private readonly cache = new Map<string, CachedSession>();
  /** The same entries by lease id: sessions and the pool ask per connection. */
  private readonly byLease = new Map<string, CachedSession>();
  private readonly creating = new Map<string, { readonly promise: Promise<SessionCredential>; callers: number }>();
  /** Lease ids this process is creating or revoking right now; any other such record of ours is debris. */
  private readonly inFlight = new Set<string>();

  private readonly cap: IssuedCap | null;
  /** Creations, issues, renewals and revocations so far, by outcome (metrics). */
  readonly operations: LeaseOperationCounts = newOperationCounts();

  constructor(private readonly options: LeaseManagerOptions) {
    this.now = options.now ?? Date.now;
    this.cap = options.issuedMaxLive === undefined ? null : new IssuedCap(options.store, options.issuedMaxLive, this.now);
  }

  /**
   * The account a session for `identity` in `role` logs in as: the live lease for that pair,
   * or a new one. Rotates to a new lease when the current one is within half a TTL of its
   * max; the old one is then dropped, and its open sessions finish undisturbed (MariaDB
   * keeps an authenticated connection of a dropped user).
   */
  async sessionCredential(identity: Identity, role: string, database: string | null): Promise<SessionCredential> {
    const key = `${identity.principal}\0${role}`;
    const cached = this.cache.get(key);
    const now = this.now();
    if (cached !== undefined) {
      const lease = cached.credential.lease;
      const nearMax = lease.maxExpiresAt - now < this.options.timings.sessionTtlMs / 2;
      // meshgate's certificate changed subject: the account requires the old one.
      const renamed = !sameRequirement(cached.credential.requirement, this.requirementNow());
      if (cached.expiresAt > now + 1000 && !nearMax && !renamed) {
        cached.handedOut++;
        return cached.credential;
      }
      this.uncache(key, cached);
      void this.retire(cached, renamed ? "meshgate's upstream certificate changed" : nearMax ? 'rotated before its max TTL' : 'expired');
    }
    const pending = this.creating.get(key);
    if (pending !== undefined) {
      pending.callers++;
      return pending.promise;
    }
    const creation = {
      promise: this.createLease('session', identity, role, database, this.options.timings.sessionTtlMs, this.options.timings.sessionMaxTtlMs)
        .then((credential) => {
          const entry: CachedSession = { credential, holders: 0, handedOut: creation.callers, expiresAt: credential.lease.expiresAt };
          this.cache.set(key, entry);
          this.byLease.set(credential.lease.id, entry);
          return credential;
        })
        .finally(() => this.creating.delete(key)),
      callers: 1,
    };
    this.creating.set(key, creation);
    return creation.promise;
  }

  /**
   * The login a session lease was just created for failed, and nobody else was given the
   * lease: its account goes now, so a failed login leaves no account behind (a lease shared
   * with another session stays, for that session). Answers whether it was dropped.
   */
  async abandon(leaseId: string, reason: string): Promise<boolean> {
    const entry = this.entryOf(leaseId);
    if (entry === undefined || entry.handedOut !== 1 || entry.holders !== 0) return false;
    // At once, before anything is awaited: the next session of the identity creates a new lease.
    this.forget(leaseId);
    const revoked = await this.revokeOne(entry.credential.lease, reason, { killSessions: false }).catch((error: unknown) => {
      this.options.log.warn('cannot drop the account of a failed login now; the reaper will', { lease: leaseId, error: asMeshgateError(error).message });
      return null;
    });
    return revoked !== null;
  }

  /** A session started using the lease (counts toward renewal). */
  hold(leaseId: string): void {
    const entry = this.entryOf(leaseId);
    if (entry !== undefined) entry.holders++;
  }

  release(leaseId: string): void {
    const entry = this.entryOf(leaseId);
    if (entry !== undefined && entry.holders > 0) entry.holders--;
  }

  /** Whether a pooled connection on this lease may still be handed out. */
  isUsable(leaseId: string): boolean {
    const entry = this.entryOf(leaseId);
    return entry !== undefined && entry.expiresAt > this.now();
  }

  /** A credential for a caller to connect directly (CI): never renewed, dropped at expiry. */
  async issue(identity: Identity, role: string, database: string | null, ttlMs?: number): Promise<IssuedCredential> {
    const { issuedTtlMs, issuedMaxTtlMs } = this.options.timings;
    const ttl = ttlMs ?? issuedTtlMs;
    if (ttl > issuedMaxTtlMs) {
      throw mgError('MG_LEASE_TTL_TOO_LONG', `a TTL of ${Math.round(ttl / 1000)} s is above the maximum of ${Math.round(issuedMaxTtlMs / 1000)} s; ask for less (--ttl)`);
    }
    if (ttl < 1000) throw mgError('MG_USAGE', 'a lease TTL must be at least 1 s');
    const credential = await this.createLease('issued', identity, role, database, ttl, ttl);
    return { ...credential, expiresAt: credential.lease.expiresAt };
  }

  list(filter: LeaseFilter = { states: ['creating', 'active', 'revoking'] }): Promise<LeaseRecord[]> {
    return this.options.store.listLeases(filter);
  }

  /**
   * Revokes every live lease the selector names: drops the account and kills its
   * connections. Safe to run on several replicas at once: the CAS decides who drops.
   */
  async revoke(selector: RevokeSelector, reason: string): Promise<LeaseRecord[]> {
    if (selector.leaseId === undefined && selector.principal === undefined && selector.role === undefined) {
      throw mgError('MG_USAGE', 'say which leases to revoke: a lease id, an identity or a role');
    }
    let targets: LeaseRecord[];
    if (selector.leaseId !== undefined) {
      const lease = await this.options.store.getLease(selector.leaseId);
      if (lease === null) throw mgError('MG_LEASE_NOT_FOUND', `no lease ${selector.leaseId}; \`meshgate creds list\` shows the live ones`);
      targets = [lease];
    } else {
      targets = await this.options.store.listLeases({
        states: ['active'],
        ...(selector.principal === undefined ? {} : { principal: selector.principal }),
        ...(selector.role === undefined ? {} : { role: selector.role }),
      });
    }
    const revoked: LeaseRecord[] = [];
    for (const lease of targets) {
      const done = await this.revokeOne(lease, reason, { killSessions: true });
      if (done !== null) revoked.push(done);
    }
    return revoked;
  }

  /**
   * Renews session leases in use, and finishes what crashed or expired: expired leases,
   * `creating` records a dead process left, `revoking` claims a dead replica left.
   */
  async maintain(): Promise<{ renewed: number; reaped: number }> {
    const now = this.now();
    let renewed = 0;
    for (const entry of [...this.cache.values()]) {
      const lease = entry.credential.lease;
      // Another replica or a `creds revoke` process may have ended it: stop handing it out.
      const stored = await this.options.store.getLease(lease.id).catch(() => undefined);
      if (stored !== undefined && (stored === null || stored.state !== 'active')) {
        this.forget(lease.id);
        continue;
      }
      if (entry.holders === 0 || entry.expiresAt - now > this.options.timings.sessionTtlMs / 2) continue;
      const expiresAt = Math.min(now + this.options.timings.sessionTtlMs, lease.maxExpiresAt);
      const updated = await this.options.store.transitionLease(lease.id, ['active'], 'active', { expiresAt, owner: this.options.owner }).catch((error: unknown) => {
        this.options.log.warn('cannot renew a lease; it ends at its current expiry unless the store comes back', { lease: lease.id, error: asMeshgateError(error).message });
        this.operations.renew.failed++;
        return undefined;
      });
      if (updated === null) this.forget(lease.id); // revoked elsewhere
      else if (updated !== undefined) {
        entry.expiresAt = updated.expiresAt;
        renewed++;
        this.operations.renew.completed++;
      }
    }
    const reaped = await this.reap(now);
    await this.options.store.pruneRevoked(now - REVOKED_HISTORY_MS).catch(() => 0);
    return { renewed, reaped };
  }

  /**
   * MariaDB refused a session lease's password. Stops handing it out, then finds out why
   * (lease-refusal.ts): a lease whose account was changed behind meshgate's back is revoked at
   * once, its account dropped and every connection of it killed; the caller raises the alert.
   */
  async refused(leaseId: string): Promise<RefusalVerdict> {
    const entry = this.entryOf(leaseId);
    if (entry === undefined) return { kind: 'ended' };
    this.forget(leaseId);
    const { lease } = entry.credential;
    return answerRefusal(entry.credential, {
      store: this.options.store,
      accounts: this.options.accounts,
      log: this.options.log,
      now: this.now(),
      current: this.requirementNow(),
      revoke: (reason, killSessions) => this.revokeOne(lease, reason, { killSessions }),
    });
  }

  /**
   * At start: this replica's own session leases from an earlier run are useless (their
   * passwords died with it), so they go now rather than at expiry.
   */
  async reclaimOrphans(): Promise<number> {
    const orphans = await this.options.store.listLeases({ states: ['active'], purpose: 'session' });
    let count = 0;
    for (const lease of orphans.filter((l) => l.owner === this.options.owner)) {
      if ((await this.revokeOne(lease, 'left by an earlier run of this replica', { killSessions: true })) !== null) count++;
    }
    return count + (await this.reap(this.now()));
  }

  /** Drops every session lease this process holds (shutdown); issued leases live on. */
  async close(): Promise<void> {
    const entries = [...this.cache.values()];
    this.cache.clear();
    this.byLease.clear();
    await Promise.all(entries.map((entry) => this.revokeOne(entry.credential.lease, 'meshgate shut down', { killSessions: false }).catch(() => null)));
  }

  // ── internals ────────────────────────────────────────────────────────────────────────

  private async createLease(
    purpose: LeasePurpose,
    identity: Identity,
    role: string,
    database: string | null,
    ttlMs: number,
    maxTtlMs: number,
  ): Promise<SessionCredential> {
    // A role MariaDB lacks would only leave a record per attempt; say so before writing one.
    if (!(await this.options.accounts.roleExists(role))) {
      throw roleUnknown(role);
    }
    const now = this.now();
    const suffix = randomLeaseSuffix();
    const record: LeaseRecord = {
      id: `lease_${randomBytes(18).toString('base64url')}`,
      purpose,
      principal: identity.spiffeId,
      role,
      database,
      username: accountNameFor(identity.spiffeId, suffix),
      userHost: this.options.userHost ?? '%',
      state: 'creating',
      createdAt: now,
      expiresAt: now + ttlMs,
      maxExpiresAt: now + maxTtlMs,
      updatedAt: now,
      revokedAt: null,
      revokeReason: null,
      owner: this.options.owner,
    };
    // In flight before the record exists: the cap's recount awaits between the two, and the
    // sweep must not take the record for a crash's debris meanwhile.
    this.inFlight.add(record.id);
    try {
      // Before the account exists: a crash from here on leaves a record the reaper finds.
      if (purpose === 'issued' && this.cap !== null) await this.cap.insert(record);
      else await this.options.store.createLease(record);
      const created = await this.createAccountFor(record, purpose, role);
      this.operations[purpose === 'issued' ? 'issue' : 'create'].completed++;
      return created;
    } catch (error) {
      this.operations[purpose === 'issued' ? 'issue' : 'create'].failed++;
      throw error;
    } finally {
      this.inFlight.delete(record.id);
    }
  }

  private async createAccountFor(record: LeaseRecord, purpose: LeasePurpose, role: string): Promise<SessionCredential> {
    const password = randomPassword();
    // Issued leases are for direct connections, which hold no meshgate certificate.
    const requirement = purpose === 'session' ? this.requirementNow() : null;
    try {
      await this.options.accounts.createAccount({ username: record.username, userHost: record.userHost }, password, role, requirement);
    } catch (error) {
      // Refusals come before CREATE USER or are undone by createAccount; a lost connection
      // may leave the account behind, so the record says `revoked` only once it is gone.
      // Otherwise it stays `creating`, and the reaper drops the account when it can.
      const code = asMeshgateError(error).code;
      const nothingLeft =
        code === 'MG_LEASE_ROLE_UNKNOWN' ||
        code === 'MG_UPSTREAM_AUTH_FAILED' ||
        (await this.options.accounts.dropAccount({ username: record.username, userHost: record.userHost }).then(
          () => true,
          () => false,
        ));
      if (nothingLeft) {
        await this.options.store
          .transitionLease(record.id, ['creating'], 'revoked', { revokedAt: this.now(), revokeReason: `creation failed: ${code}` })
          .catch(() => undefined);
      }
      throw error;
    }
    const active = await this.options.store.transitionLease(record.id, ['creating'], 'active');
    if (active === null) {
      await this.options.accounts.dropAccount({ username: record.username, userHost: record.userHost }).catch(() => undefined);
      throw mgError('MG_LEASE_REVOKED', 'the lease was revoked while it was being created; try again');
    }
    this.options.log.info('lease created', { lease: active.id, purpose, principal: active.principal, role, username: active.username, expiresAt: new Date(active.expiresAt).toISOString() });
    return { lease: active, username: active.username, password, requirement };
  }

  /**
   * `leftover`: finishing a `creating` or `revoking` record nobody is working on, claimed
   * from its current state (with `updatedBefore` when another replica may still be on it).
   */
  private async revokeOne(lease: LeaseRecord, reason: string, options: { killSessions: boolean; leftover?: { updatedBefore?: number } }): Promise<LeaseRecord | null> {
    const store = this.options.store;
    const claimed =
      options.leftover !== undefined
        ? await store.transitionLease(lease.id, [lease.state], 'revoking', { owner: this.options.owner }, options.leftover)
        : await store.transitionLease(lease.id, ['active'], 'revoking', { owner: this.options.owner });
    if (claimed === null) return null; // another replica, or an earlier call, has it
    this.forget(lease.id);
    this.inFlight.add(claimed.id);
    try {
      await this.options.accounts.dropAccount({ username: claimed.username, userHost: claimed.userHost }, { killSessions: options.killSessions });
    } catch (error) {
      this.operations.revoke.failed++;
      throw error;
    } finally {
      this.inFlight.delete(claimed.id);
    }
    this.operations.revoke.completed++;
    const revoked = await store.transitionLease(claimed.id, ['revoking'], 'revoked', { revokedAt: this.now(), revokeReason: reason });
    this.options.log.info('lease revoked', { lease: claimed.id, principal: claimed.principal, role: claimed.role, username: claimed.username, reason });
    return revoked;
  }

  private reap(now: number): Promise<number> {
    return reapLeases(now, {
      store: this.options.store,
      owner: this.options.owner,
      inFlight: this.inFlight,
      log: this.options.log,
      onReaped: this.options.onReaped,
      revoke: (lease, reason, leftover) => this.revokeOne(lease, reason, { killSessions: true, leftover }),
    });
  }

  private async retire(entry: CachedSession, reason: string): Promise<void> {
    try {
      await this.revokeOne(entry.credential.lease, reason, { killSessions: false });
    } catch (error) {
      this.options.log.warn('cannot drop a rotated lease now; the reaper will', { lease: entry.credential.lease.id, error: asMeshgateError(error).message });
    }
  }

  private requirementNow(): AccountRequirement | null {
    return this.options.requirement?.() ?? null;
  }

  private entryOf(leaseId: string): CachedSession | undefined {
    return this.byLease.get(leaseId);
  }

  private uncache(key: string, entry: CachedSession): void {
    if (this.cache.get(key) === entry) this.cache.delete(key);
    this.byLease.delete(entry.credential.lease.id);
  }

  private forget(leaseId: string): void {
    for (const [key, entry] of this.cache) {
      if (entry.credential.lease.id !== leaseId) continue;
      this.uncache(key, entry);
      this.options.onLeaseEnded?.(entry.credential.lease);
    }
  }
}
