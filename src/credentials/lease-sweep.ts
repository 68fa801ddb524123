/**
 * The sweep's reaping half: what ended or crashed is finished here. Expired active leases are
 * revoked; `creating` and `revoking` records nobody works on any more (this process's own
 * debris at once, another replica's once its claim is stale) are claimed and finished. A
 * lease that cannot be finished now is retried at the next sweep.
 */
import { asMeshgateError } from '../errors/index.ts';
import type { LeaseRecord, StateStore } from '../store/index.ts';
import type { LeaseLog } from './lease-types.ts';

/** Claims older than this belong to a replica that died mid-operation. */
const STALE_CLAIM_MS = 60_000;

export interface SweepDeps {
  readonly store: StateStore;
  /** This replica's id. */
  readonly owner: string;
  /** Lease ids this process is creating or revoking right now; any other such record of ours is debris. */
  readonly inFlight: ReadonlySet<string>;
  readonly log: LeaseLog;
  readonly onReaped: ((lease: LeaseRecord, reason: string) => void) | undefined;
  /**
   * Revokes the lease and kills its connections; null when someone else has it. `leftover`:
   * finishing a record nobody is working on, claimed from its current state.
   */
  revoke(lease: LeaseRecord, reason: string, leftover?: { updatedBefore?: number }): Promise<LeaseRecord | null>;
}

/** Answers how many leases it finished. */
export async function reapLeases(now: number, deps: SweepDeps): Promise<number> {
  const { store } = deps;
  let reaped = 0;
  for (const lease of await store.listLeases({ states: ['active'], expiresBefore: now })) {
    if (finished(deps, await deps.revoke(lease, 'expired').catch((e: unknown) => failed(deps, lease, e)), 'expired')) reaped++;
  }
  for (const lease of await store.listLeases({ states: ['creating', 'revoking'] })) {
    // Ours and not in progress here: debris now. Anyone else's: only once its claim is stale.
    const ours = lease.owner === deps.owner && !deps.inFlight.has(lease.id);
    if (!ours && lease.updatedAt >= now - STALE_CLAIM_MS) continue;
    const reason = lease.state === 'creating' ? 'creation was interrupted' : 'revocation was interrupted';
    const leftover = ours ? { updatedBefore: lease.updatedAt + 1 } : { updatedBefore: now - STALE_CLAIM_MS };
    if (finished(deps, await deps.revoke(lease, reason, leftover).catch((e: unknown) => failed(deps, lease, e)), reason)) reaped++;
  }
  return reaped;
}

function finished(deps: SweepDeps, lease: LeaseRecord | null, reason: string): boolean {
  if (lease !== null) deps.onReaped?.(lease, reason);
  return lease !== null;
}

function failed(deps: SweepDeps, lease: LeaseRecord, error: unknown): null {
  deps.log.warn('cannot finish a lease yet; retrying at the next sweep', { lease: lease.id, error: asMeshgateError(error).message });
  return null;
}
