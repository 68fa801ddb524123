/**
 * What one service class holds between admissions: its bucket, its in-flight and session
 * counts, its identities' own, and its queue of waiters. Kept by class name across reloads
 * (only `settings` is swapped), so admissions held before a reload are given back to the
 * counts they were taken from.
 */
import { Bucket, type RateBucket } from './bucket.ts';
import type { Admission } from './types.ts';
import type { AdmissionKind, ThrottleLimit } from './refusal.ts';
import type { ClassSettings, Limits } from './settings.ts';

/**
 * Where rate buckets come from: local ones by default, or SharedRates (rates shared by the
 * replicas through Redis). Keys name a bucket across replicas: `class:<name>`,
 * `identity:<class>:<principal>`.
 */
export interface BucketSource {
  bucket(key: string, perSecond: number, burst: number, nowMs: number): RateBucket;
  /** A bucket forgotten (an idle identity): the source may give back what it holds. */
  drop(bucket: RateBucket): void;
}

export const localBuckets: BucketSource = Object.freeze({
  bucket: (_key: string, perSecond: number, burst: number, nowMs: number) => new Bucket(perSecond, burst, nowMs),
  drop() {},
});

export interface IdentityState {
  bucket: RateBucket | null;
  loginBucket: RateBucket | null;
  inFlight: number;
  sessions: number;
}

export interface Waiter {
  readonly principal: string;
  readonly kind: AdmissionKind;
  readonly since: number;
  /** since + the class's timeout; a reload recomputes it, so deadlines stay in queue order. */
  deadline: number;
  /** Set once the waiter is admitted, refused or cancelled; it is then skipped and dropped. */
  done: boolean;
  settle(admission: Admission): void;
}

/** Identity states tracked before idle ones are looked for; doubles with the live ones (as rate.ts). */
const SWEEP_FROM = 1024;

export class ClassState {
  settings: ClassSettings;
  bucket: RateBucket | null = null;
  loginBucket: RateBucket | null = null;
  readonly #source: BucketSource;
  inFlight = 0;
  sessions = 0;
  readonly identities = new Map<string, IdentityState>();
  /**
   * Waiters in arrival order from `head`; finished ones (admitted out of order, cancelled)
   * stay in place until they reach the head, so a pass costs what it serves, not the queue.
   */
  queue: Waiter[] = [];
  head = 0;
  /** Live waiters in `queue`. */
  waiting = 0;
  /** When a rate-blocked waiter can next have a token (Infinity: none is rate-blocked). */
  refillAt = Infinity;
  /** The last pass over the queue stopped at a waiter a class-wide limit blocks. */
  classBlocked = false;
  #sweepAt = SWEEP_FROM;
  // Counters for metrics; never reset (Prometheus counters).
  admitted = 0;
  refused = 0;
  timedOut = 0;
  queued = 0;
  waitedMs = 0;

  constructor(settings: ClassSettings, nowMs: number, source: BucketSource = localBuckets) {
    this.settings = settings;
    this.#source = source;
    this.retune(settings, nowMs);
  }

  /** New limits from a reload: counts stay, the bucket keeps its tokens (up to the new burst). */
  retune(settings: ClassSettings, nowMs: number): void {
    this.settings = settings;
    // Queued callers get the new timeout, counted from when each began to wait.
    const wait = settings.overLimit;
    if (wait !== 'refuse') for (let i = this.head; i < this.queue.length; i++) this.queue[i]!.deadline = this.queue[i]!.since + wait.wait.timeoutMs;
    this.bucket = this.#retuned(this.bucket, `class:${settings.name}`, settings.rate, nowMs);
    this.loginBucket = this.#retuned(this.loginBucket, `logins:class:${settings.name}`, settings.logins, nowMs);
    const inner = settings.perIdentity;
    for (const [principal, identity] of this.identities) {
      identity.bucket = this.#retuned(identity.bucket, this.#identityKey(principal), inner?.rate ?? null, nowMs);
      identity.loginBucket = this.#retuned(identity.loginBucket, `logins:${this.#identityKey(principal)}`, inner?.logins ?? null, nowMs);
      if (this.#idle(identity)) this.#forget(principal, identity);
    }
  }

  /** The identity's own state, made when its class has per-identity limits; null otherwise. */
  identity(principal: string, nowMs: number): IdentityState | null {
    const inner = this.settings.perIdentity;
    if (inner === null) return null;
    let identity = this.identities.get(principal);
    if (identity === undefined) {
      if (this.identities.size >= this.#sweepAt) this.#sweep(nowMs);
      identity = { bucket: null, loginBucket: null, inFlight: 0, sessions: 0 };
      this.identities.set(principal, identity);
    }
    // Made lazily, so a reload that adds a per-identity rate needs no pass over identities.
    if (identity.bucket === null && inner.rate !== null) identity.bucket = this.#source.bucket(this.#identityKey(principal), inner.rate.perSecond, inner.rate.burst, nowMs);
    if (identity.loginBucket === null && inner.logins !== null) identity.loginBucket = this.#source.bucket(`logins:${this.#identityKey(principal)}`, inner.logins.perSecond, inner.logins.burst, nowMs);
    return identity;
  }

  /**
   * The first limit that stops `kind` for this identity now, or null when all allow it.
   * Checks everything before taking anything, so a refusal costs no token.
   */
  blocked(identity: IdentityState | null, kind: AdmissionKind, nowMs: number): ThrottleLimit | null {
    const s = this.settings;
    const inner: Limits | null = s.perIdentity;
    // A credential issued is a login without a session: only the login rates count it.
    if (kind === 'session' || kind === 'credential') {
      if (kind === 'session' && s.sessions !== null && this.sessions >= s.sessions) return 'sessions';
      if (kind === 'session' && identity !== null && inner!.sessions !== null && identity.sessions >= inner!.sessions) return 'identity-sessions';
      if (this.loginBucket !== null) {
        this.loginBucket.refill(nowMs);
        if (!this.loginBucket.ready) return 'logins';
      }
      const own = identity?.loginBucket ?? null;
      if (own !== null) {
        own.refill(nowMs);
        if (!own.ready) return 'identity-logins';
      }
      return null;
    }
    if (s.concurrency !== null && this.inFlight >= s.concurrency) return 'concurrency';
    if (identity !== null && inner!.concurrency !== null && identity.inFlight >= inner!.concurrency) return 'identity-concurrency';
    const bucket = this.bucket;
    if (bucket !== null) {
      bucket.refill(nowMs);
      if (!bucket.ready) return 'rate';
    }
    const own = identity?.bucket ?? null;
    if (own !== null) {
      own.refill(nowMs);
      if (!own.ready) return 'identity-rate';
    }
    return null;
  }

  /** Takes what blocked() found free. */
  take(identity: IdentityState | null, kind: AdmissionKind): void {
    if (kind === 'session' || kind === 'credential') {
      if (kind === 'session') this.sessions++;
      this.loginBucket?.take();
      if (identity !== null) {
        if (kind === 'session') identity.sessions++;
        identity.loginBucket?.take();
      }
      return;
    }
    this.inFlight++;
    if (this.bucket !== null) this.bucket.take();
    if (identity !== null) {
      identity.inFlight++;
      if (identity.bucket !== null) identity.bucket.take();
    }
  }

  /** Gives back what take() took; the caller guarantees once. */
  give(identity: IdentityState | null, kind: AdmissionKind): void {
    if (kind === 'credential') return;
    if (kind === 'session') {
      this.sessions--;
      if (identity !== null) identity.sessions--;
    } else {
      this.inFlight--;
      if (identity !== null) identity.inFlight--;
    }
  }

  /** Ms until the limit that blocked can pass, where time alone frees it (a rate); else null. */
  retryAfter(identity: IdentityState | null, limit: ThrottleLimit): number | null {
    if (limit === 'rate') return this.bucket?.waitMs ?? null;
    if (limit === 'identity-rate') return identity?.bucket?.waitMs ?? null;
    if (limit === 'logins') return this.loginBucket?.waitMs ?? null;
    if (limit === 'identity-logins') return identity?.loginBucket?.waitMs ?? null;
    return null;
  }

  /** The earliest deadline of a live waiter (deadlines are in queue order), or Infinity. */
  get nextDeadline(): number {
    for (let i = this.head; i < this.queue.length; i++) if (!this.queue[i]!.done) return this.queue[i]!.deadline;
    return Infinity;
  }

  /** Drops finished waiters from the head, and compacts once most of the array is behind it. */
  trim(): void {
    const queue = this.queue;
    while (this.head < queue.length && queue[this.head]!.done) this.head++;
    if (this.head === queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= queue.length) {
      this.queue = queue.slice(this.head);
      this.head = 0;
    }
  }

  /** True when nothing is held or awaited here: a class removed by a reload can be forgotten. */
  get idle(): boolean {
    return this.inFlight === 0 && this.sessions === 0 && this.waiting === 0;
  }

  #idle(identity: IdentityState): boolean {
    // A full bucket is what a new identity gets anyway, so forgetting it changes no answer.
    return identity.inFlight === 0 && identity.sessions === 0 && (identity.bucket === null || identity.bucket.full) && (identity.loginBucket === null || identity.loginBucket.full);
  }

  #sweep(nowMs: number): void {
    for (const [principal, identity] of this.identities) {
      identity.bucket?.refill(nowMs);
      identity.loginBucket?.refill(nowMs);
      if (this.#idle(identity)) this.#forget(principal, identity);
    }
    this.#sweepAt = Math.max(SWEEP_FROM, 2 * this.identities.size);
  }

  #forget(principal: string, identity: IdentityState): void {
    this.identities.delete(principal);
    if (identity.bucket !== null) this.#source.drop(identity.bucket);
    if (identity.loginBucket !== null) this.#source.drop(identity.loginBucket);
  }

  #identityKey(principal: string): string {
    return `identity:${this.settings.name}:${principal}`;
  }

  #retuned(bucket: RateBucket | null, key: string, rate: { readonly perSecond: number; readonly burst: number } | null, nowMs: number): RateBucket | null {
    if (rate === null) {
      if (bucket !== null) this.#source.drop(bucket);
      return null;
    }
    if (bucket === null) return this.#source.bucket(key, rate.perSecond, rate.burst, nowMs);
    bucket.retune(rate.perSecond, rate.burst, nowMs);
    return bucket;
  }
}
