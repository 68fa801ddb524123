/**
 * Per-key rates, and the refusal that says when to come back. Local token buckets today,
 * one set per process; a limit shared by several replicas (Redis) implements the same
 * RateLimiter, so callers do not change.
 */
import { MeshgateError, type ErrorCode } from '../errors/index.ts';

export type RateVerdict = { readonly allowed: true } | { readonly allowed: false; /** Until the next take can succeed. */ readonly retryAfterMs: number };

export interface RateLimiter {
  /** Sustained takes per minute per key; also the burst a rested key may spend at once. */
  readonly perMinute: number;
  /** Takes one token for `key` at `nowMs`, or says how long until one is there (a refusal takes nothing). */
  take(key: string, nowMs: number): RateVerdict;
}

/** A limit_exceeded refusal that knows when trying again can succeed (HTTP: Retry-After). */
export class LimitExceededError extends MeshgateError {
  readonly retryAfterSeconds: number;

  constructor(code: ErrorCode, message: string, retryAfterSeconds: number) {
    super(code, message);
    this.name = 'LimitExceededError';
    // Whole seconds, at least 1: what Retry-After carries, and never "now" for a refusal.
    this.retryAfterSeconds = Math.max(1, Math.ceil(retryAfterSeconds));
  }
}

/** Keys tracked before idle ones are looked for; the threshold doubles with the live keys. */
const SWEEP_FROM = 1024;

interface Bucket {
  tokens: number;
  at: number;
}

class TokenBuckets implements RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #perMs: number;
  #sweepAt = SWEEP_FROM;

  constructor(readonly perMinute: number) {
    this.#perMs = perMinute / 60_000;
  }

  /** Keys held now (tests check that idle ones go). */
  get size(): number {
    return this.#buckets.size;
  }

  take(key: string, nowMs: number): RateVerdict {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#sweepAt) this.#sweep(nowMs);
      bucket = { tokens: this.perMinute, at: nowMs };
      this.#buckets.set(key, bucket);
    }
    this.#refill(bucket, nowMs);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    return { allowed: false, retryAfterMs: Math.ceil((1 - bucket.tokens) / this.#perMs) };
  }

  #refill(bucket: Bucket, nowMs: number): void {
    // A clock that steps back refills nothing rather than draining.
    if (nowMs > bucket.at) bucket.tokens = Math.min(this.perMinute, bucket.tokens + (nowMs - bucket.at) * this.#perMs);
    bucket.at = Math.max(bucket.at, nowMs);
  }

  // A full bucket is what a new key gets anyway, so forgetting it changes no answer; a
  // bucket short of tokens stays, or its key would get a fresh burst.
  #sweep(nowMs: number): void {
    for (const [key, bucket] of this.#buckets) {
      this.#refill(bucket, nowMs);
      if (bucket.tokens >= this.perMinute) this.#buckets.delete(key);
    }
    this.#sweepAt = Math.max(SWEEP_FROM, 2 * this.#buckets.size);
  }
}

/**
 * A token bucket per key: `perMinute` at once after rest, then one every 60/perMinute s.
 * Keys should be verified identities, so the map is bounded by the callers that exist.
 */
export function tokenBuckets(options: { readonly perMinute: number }): RateLimiter & { readonly size: number } {
  if (!Number.isInteger(options.perMinute) || options.perMinute <= 0) throw new TypeError('perMinute must be a positive integer');
  return new TokenBuckets(options.perMinute);
}
