/**
 * The signing endpoint's two small guards: a per-identity rate limit (an agent renews at
 * half-life, a few times a day; more than a handful a minute is a restart loop or a copied
 * credential, and each issuance costs a lock and a ca.json write), and one issuance at a time
 * per process, so concurrent requests queue in memory instead of polling the CA lock file.
 */
import { mgError } from '../../errors/index.ts';

export const DEFAULT_ISSUANCES_PER_MINUTE = 10;
const WINDOW_MS = 60_000;

/** A sliding one-minute window per key. */
export class RateLimiter {
  readonly #limit: number;
  readonly #hits = new Map<string, number[]>();

  constructor(perMinute: number) {
    if (!Number.isInteger(perMinute) || perMinute <= 0) throw new TypeError('perMinute must be a positive integer');
    this.#limit = perMinute;
  }

  /** Counts one use of `key` at `nowMs`, or returns the seconds until one is allowed. */
  take(key: string, nowMs: number): { allowed: true } | { allowed: false; retryAfterSeconds: number } {
    const recent = (this.#hits.get(key) ?? []).filter((t) => t > nowMs - WINDOW_MS);
    if (recent.length >= this.#limit) {
      this.#hits.set(key, recent);
      const oldest = recent[0] ?? nowMs;
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((oldest + WINDOW_MS - nowMs) / 1000)) };
    }
    recent.push(nowMs);
    this.#hits.set(key, recent);
    // Keys are verified identities, so the map is bounded by the workloads that exist;
    // sweeping idle ones now and then keeps it at the ones active this minute.
    if (this.#hits.size > 1024) this.#sweep(nowMs);
    return { allowed: true };
  }

  #sweep(nowMs: number): void {
    for (const [key, hits] of this.#hits) {
      if (!hits.some((t) => t > nowMs - WINDOW_MS)) this.#hits.delete(key);
    }
  }
}

/** Runs tasks one at a time; refuses with MG_CA_BUSY when `maxQueued` are already waiting. */
export function serialQueue(maxQueued: number): <T>(task: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  let waiting = 0;
  return <T>(task: () => Promise<T>): Promise<T> => {
    if (waiting >= maxQueued) {
      return Promise.reject(mgError('MG_CA_BUSY', `the signing endpoint has ${waiting} requests waiting for the CA; retry shortly`));
    }
    waiting += 1;
    const result = tail.then(task);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    tail = settled;
    void settled.then(() => {
      waiting -= 1;
    });
    return result;
  };
}
