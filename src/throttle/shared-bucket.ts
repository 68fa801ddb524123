/**
 * One rate shared by every replica: the bucket lives in Redis, and this replica spends a small
 * lease of its tokens locally. The admit path (refill, ready, take) reads and writes plain
 * fields only; when the lease runs low, refill() starts one request for the next lease and
 * returns at once. Redis never grants more than its bucket holds, so the replicas together
 * never pass the limit by more than the provisional first token of each key (see docs).
 *
 * While the owner is in local mode (Redis unreachable), the same calls go to a local bucket
 * at the replica's share of the rate.
 */
import { Bucket, type RateBucket } from './bucket.ts';

/** What a SharedBucket needs of SharedRates (kept narrow so tests can read it). */
export interface LeaseSource {
  /** False while Redis is unreachable: buckets use their local share. */
  readonly shared: boolean;
  /** Replicas last seen sharing the limits (1 when never seen). */
  readonly replicas: number;
  /** Asks Redis for `want` tokens for `bucket`; calls bucket.leased(…, owedSent, …) or bucket.failed(), never throws. */
  lease(bucket: SharedBucket, want: number, owedSent: number): void;
}

/**
 * Tokens asked for per lease: 50 ms of the rate, at least a 20th of the burst (so a burst is
 * spent in at most ~20 round trips), at most the burst. This is each replica's slack.
 */
export function leaseSize(perSecond: number, burst: number): number {
  return Math.max(1, Math.min(burst, Math.max(Math.ceil(perSecond / 20), Math.ceil(burst / 20))));
}

export class SharedBucket implements RateBucket {
  readonly key: string;
  #perSecond: number;
  #burst: number;
  #batch: number;
  /** Tokens Redis granted this replica and not yet spent; below 0 while the provisional token is owed. */
  #leased = 1;
  /** Tokens spent before Redis granted them (the provisional first one), asked for on the next lease. */
  #owed = 1;
  #pending = false;
  /** When Redis said its bucket was empty: no new request before then. */
  #retryAt = 0;
  #now = 0;
  #local: Bucket | null = null;
  #localShare = 0;
  readonly #source: LeaseSource;

  constructor(source: LeaseSource, key: string, perSecond: number, burst: number, nowMs: number) {
    this.#source = source;
    this.key = key;
    this.#perSecond = perSecond;
    this.#burst = burst;
    this.#batch = leaseSize(perSecond, burst);
    this.#now = nowMs;
  }

  get burst(): number {
    return this.#burst;
  }

  get perSecond(): number {
    return this.#perSecond;
  }

  /** Tokens held here now (tests and snapshots). */
  get held(): number {
    return this.#leased;
  }

  refill(nowMs: number): void {
    this.#now = nowMs;
    if (!this.#source.shared) {
      this.#localBucket(nowMs).refill(nowMs);
      return;
    }
    // Asked for before running out, so a steady stream finds the next lease already here.
    if (!this.#pending && this.#leased * 2 <= this.#batch && nowMs >= this.#retryAt) this.#request();
  }

  get ready(): boolean {
    return this.#source.shared ? this.#leased >= 1 : this.#localBucket(this.#now).ready;
  }

  get waitMs(): number {
    if (!this.#source.shared) return this.#localBucket(this.#now).waitMs;
    if (this.#leased >= 1) return 0;
    // A lease on its way comes within a round trip; an empty Redis bucket says when it refills.
    return Math.max(1, Math.ceil(this.#retryAt - this.#now));
  }

  take(): void {
    if (this.#source.shared) this.#leased -= 1;
    else this.#localBucket(this.#now).take();
  }

  retune(perSecond: number, burst: number, nowMs: number): void {
    this.#perSecond = perSecond;
    this.#burst = burst;
    this.#batch = leaseSize(perSecond, burst);
    if (this.#local !== null) this.#local.retune(...localShare(perSecond, burst, this.#localShare), nowMs);
    // Redis' last "empty, wait" was for the old rate: ask again under the new one at once.
    this.#retryAt = 0;
    this.#now = nowMs;
  }

  get full(): boolean {
    if (!this.#source.shared) return this.#local === null || this.#local.full;
    return !this.#pending && this.#leased <= 0 && this.#owed === 0;
  }

  /** The lease request's answer (called by the source). */
  leased(granted: number, owedSent: number, waitMs: number): void {
    this.#pending = false;
    this.#leased += granted - owedSent;
    this.#owed -= owedSent;
    this.#retryAt = granted === 0 ? this.#now + waitMs : 0;
  }

  /** Shared mode is back: asks for a lease now if this bucket would, so traffic finds one here. */
  wake(): void {
    this.refill(this.#now);
  }

  /** The request failed (the source falls back to local); what was owed stays owed. */
  failed(): void {
    this.#pending = false;
  }

  /** Unspent leased tokens, handed back on close (the source puts them back in Redis). */
  surrender(): number {
    const back = Math.max(0, Math.floor(this.#leased));
    this.#leased -= back;
    return back;
  }

  #request(): void {
    this.#pending = true;
    // Asking for the owed tokens too repays the provisional first token.
    const owed = this.#owed;
    this.#source.lease(this, this.#batch + owed, owed);
  }

  #localBucket(nowMs: number): Bucket {
    const share = this.#source.replicas;
    if (this.#local === null) {
      this.#localShare = share;
      this.#local = new Bucket(...localShare(this.#perSecond, this.#burst, share), nowMs);
    } else if (share !== this.#localShare) {
      this.#localShare = share;
      this.#local.retune(...localShare(this.#perSecond, this.#burst, share), nowMs);
    }
    return this.#local;
  }
}

/** A replica's share of a rate while it limits alone: 1/N of the rate and burst (a burst of 1 at least). */
export function localShare(perSecond: number, burst: number, replicas: number): [perSecond: number, burst: number] {
  const n = Math.max(1, replicas);
  return [perSecond / n, Math.max(1, Math.floor(burst / n))];
}
