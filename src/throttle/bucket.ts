/**
 * What ClassState asks of a rate: the local Bucket below, or a SharedBucket (shared-bucket.ts)
 * that spends tokens leased from Redis. Every member is synchronous: the admit path never waits.
 */
export interface RateBucket {
  readonly burst: number;
  /** Brings the bucket to `nowMs` (a SharedBucket may start a lease request here, never awaited). */
  refill(nowMs: number): void;
  /** After refill(now): whether a token is there. */
  readonly ready: boolean;
  /** After refill(now): ms until one token may be there (0 when ready). */
  readonly waitMs: number;
  /** Spends the token ready found. */
  take(): void;
  retune(perSecond: number, burst: number, nowMs: number): void;
  /** Holds nothing a fresh bucket would not: forgetting it changes no answer. */
  readonly full: boolean;
}

/**
 * A token bucket on a caller-supplied clock (ms). Tokens are fractional so a slow rate
 * (0.5/s) refills smoothly; a refusal takes nothing, so refused callers never push the next
 * token further away.
 */
export class Bucket implements RateBucket {
  tokens: number;
  at: number;
  #perMs: number;
  #burst: number;

  constructor(perSecond: number, burst: number, nowMs: number) {
    this.#perMs = perSecond / 1000;
    this.#burst = burst;
    this.tokens = burst;
    this.at = nowMs;
  }

  get burst(): number {
    return this.#burst;
  }

  refill(nowMs: number): void {
    // A clock that steps back refills nothing rather than draining.
    if (nowMs > this.at) {
      this.tokens = Math.min(this.#burst, this.tokens + (nowMs - this.at) * this.#perMs);
      this.at = nowMs;
    }
  }

  /** After refill(now): whether a token is there. */
  get ready(): boolean {
    return this.tokens >= 1;
  }

  take(): void {
    this.tokens -= 1;
  }

  /** After refill(now): ms until one token is there (0 when ready). */
  get waitMs(): number {
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) / this.#perMs);
  }

  /** A reload changes the rate; what is in the bucket stays (capped by the new burst). */
  retune(perSecond: number, burst: number, nowMs: number): void {
    this.refill(nowMs);
    this.#perMs = perSecond / 1000;
    this.#burst = burst;
    this.tokens = Math.min(this.tokens, burst);
  }

  get full(): boolean {
    return this.tokens >= this.#burst;
  }
}
