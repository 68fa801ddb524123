/**
 * The per-identity cap on live direct (issued) leases. The state store is the count, so the
 * cap holds for every process and replica that shares it: in this process the count and
 * the insert of a lease record run one at a time per identity, and after the insert the
 * count is taken again, so two replicas racing for the last slot both refuse rather than
 * both succeed. A refusal leaves no account: the record it may have written is closed before
 * any CREATE USER.
 */
import { formatDuration } from '../identity/index.ts';
import type { LeaseRecord, StateStore } from '../store/index.ts';
import { LimitExceededError } from '../throttle/index.ts';

const LIVE = ['creating', 'active', 'revoking'] as const;
export const OVER_CAP_REASON = 'refused: over the live direct-credential limit (upstream.credentials.issuedMaxLive)';

export class IssuedCap {
  /** Per identity, the tail of its queue of count-and-insert steps. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    private readonly store: StateStore,
    private readonly maxLive: number,
    private readonly now: () => number,
  ) {
    if (!Number.isInteger(maxLive) || maxLive < 1) throw new TypeError('issuedMaxLive must be a positive integer');
  }

  /** Writes the `creating` record of a new issued lease, or throws MG_DIRECT_CREDS_LIMIT. */
  async insert(record: LeaseRecord): Promise<void> {
    await this.oneAtATime(record.principal, async () => {
      const live = await this.liveOf(record.principal);
      if (live.length >= this.maxLive) throw this.refusal(record.principal, live);
      await this.store.createLease(record);
    });
    const live = await this.liveOf(record.principal);
    if (live.length <= this.maxLive) return;
    // Another process wrote between our count and our insert: keep the cap, give the slot up.
    await this.store
      .transitionLease(record.id, ['creating'], 'revoked', { revokedAt: this.now(), revokeReason: OVER_CAP_REASON })
      .catch(() => undefined); // left `creating`, the reaper closes it; no account exists either way
    throw this.refusal(record.principal, live.filter((lease) => lease.id !== record.id));
  }

  private liveOf(principal: string): Promise<LeaseRecord[]> {
    return this.store.listLeases({ principal, purpose: 'issued', states: LIVE });
  }

  private refusal(principal: string, live: readonly LeaseRecord[]): LimitExceededError {
    const now = this.now();
    const next = Math.min(...live.map((lease) => lease.expiresAt));
    const seconds = Number.isFinite(next) ? Math.max(1, Math.ceil((next - now) / 1000)) : 1;
    const when = Number.isFinite(next) ? `the next one expires at ${new Date(next).toISOString()} (in ${formatDuration(seconds)})` : 'one is ending now';
    return new LimitExceededError(
      'MG_DIRECT_CREDS_LIMIT',
      `${principal} holds ${this.maxLive} live direct credentials, the most upstream.credentials.issuedMaxLive allows per identity; ` +
        `${when}: wait for it, have an admin end one with \`meshgate creds revoke --lease ID\`, or raise upstream.credentials.issuedMaxLive`,
      seconds,
    );
  }

  private async oneAtATime(key: string, step: () => Promise<void>): Promise<void> {
    const previous = this.queues.get(key) ?? Promise.resolve();
    const mine = previous.then(step);
    const settled = mine.catch(() => undefined);
    this.queues.set(key, settled);
    try {
      await mine;
    } finally {
      // The last in the queue removes it, so identities that stopped asking cost nothing.
      if (this.queues.get(key) === settled) this.queues.delete(key);
    }
  }
}
