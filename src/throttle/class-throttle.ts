/**
 * The local throttle: service classes with rate, concurrency and session limits, per class
 * and per identity inside it. `admit` is the synchronous fast path every statement takes (a
 * map lookup, a clock read, a bucket refill, a counter); `admitOrWait` adds the bounded,
 * deadline-limited queue of classes that wait.
 *
 * Serving order: when capacity frees (a release, a token refill, a reload), classes are
 * served highest priority first, FIFO inside a class. A waiter blocked only by its own
 * identity's limit does not hold back the identities queued behind it (they could not take
 * what it waits for), but nobody passes a waiter blocked by a class-wide limit.
 */
import { ClassState, localBuckets, type BucketSource, type IdentityState, type Waiter } from './class-state.ts';
import { systemClock, type ThrottleClock, type Timer } from './clock.ts';
import type { Admission, AdmissionRequest, Throttle, WaitOptions } from './types.ts';
import { throttleRefusal, type AdmissionKind, type ThrottleLimit } from './refusal.ts';
import type { ThrottleSettings } from './settings.ts';

/** A held admission: gives its slot back exactly once, however often release() is called. */
class Held {
  readonly admitted = true as const;
  waitedMs = 0;
  #cls: ClassState | null;
  readonly #identity: IdentityState | null;
  readonly #kind: AdmissionKind;
  readonly #throttle: ClassThrottle;

  constructor(throttle: ClassThrottle, cls: ClassState, identity: IdentityState | null, kind: AdmissionKind) {
    this.#throttle = throttle;
    this.#cls = cls;
    this.#identity = identity;
    this.#kind = kind;
  }

  release(): void {
    const cls = this.#cls;
    if (cls === null) return;
    this.#cls = null;
    cls.give(this.#identity, this.#kind);
    if (cls.waiting !== 0) this.#throttle.freed(cls);
  }
}

export interface ClassSnapshot {
  readonly name: string;
  readonly priority: number;
  readonly inFlight: number;
  readonly sessions: number;
  readonly waiting: number;
  /** Identities with per-identity state kept (idle ones are forgotten). */
  readonly identities: number;
  readonly admitted: number;
  readonly refused: number;
  readonly timedOut: number;
  readonly queued: number;
  /** Total ms admitted waiters spent queued. */
  readonly waitedMs: number;
}

export interface ClassThrottleOptions {
  readonly clock?: ThrottleClock;
  /** Where rate buckets live: local (default), or SharedRates for limits shared by the replicas. */
  readonly rates?: BucketSource;
}

export class ClassThrottle implements Throttle {
  readonly #clock: ThrottleClock;
  readonly #rates: BucketSource;
  #classes = new Map<string, ClassState>();
  #default!: ClassState;
  /** Every class with something held or queued (removed ones too), highest priority first. */
  #ordered: ClassState[] = [];
  #timer: Timer | null = null;
  #timerAt = Infinity;

  constructor(settings: ThrottleSettings, options: ClassThrottleOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#rates = options.rates ?? localBuckets;
    this.update(settings);
  }

  admit(request: AdmissionRequest): Admission {
    const cls = this.#classes.get(request.serviceClass) ?? this.#default;
    const now = this.#clock.now();
    // Waiters whose capacity has come back (a refill not yet woken for) go before a newcomer.
    if (cls.waiting !== 0) this.freed(cls, now);
    const identity = cls.identity(request.principal, now);
    const limit = cls.blocked(identity, request.kind, now);
    if (limit === null) {
      cls.take(identity, request.kind);
      cls.admitted++;
      return new Held(this, cls, identity, request.kind);
    }
    cls.refused++;
    return { admitted: false, error: this.#refusal(cls, identity, request.kind, limit) };
  }

  /**
   * Admits now when the class allows it (a plain Admission, no promise); otherwise, for a
   * class that waits, queues the caller and resolves when it is admitted, its deadline
   * passes, or `signal` aborts. Never rejects. An admission resolved after the caller gave
   * up must still be released.
   */
  admitOrWait(request: AdmissionRequest, options: WaitOptions = {}): Admission | Promise<Admission> {
    const cls = this.#classes.get(request.serviceClass) ?? this.#default;
    const wait = cls.settings.overLimit;
    if (wait === 'refuse') return this.admit(request);
    const now = this.#clock.now();
    if (cls.waiting !== 0) this.freed(cls, now);
    const identity = cls.identity(request.principal, now);
    const limit = cls.blocked(identity, request.kind, now);
    // Waiters left are blocked by their own identities' limits only: nothing this one takes.
    if (limit === null && (cls.waiting === 0 || !cls.classBlocked)) {
      cls.take(identity, request.kind);
      cls.admitted++;
      return new Held(this, cls, identity, request.kind);
    }
    if (cls.waiting >= wait.wait.queue) {
      cls.refused++;
      const retryAfterMs = cls.bucket === null ? null : cls.bucket.waitMs || null;
      return { admitted: false, error: throttleRefusal({ serviceClass: cls.settings.name, kind: request.kind, limit: 'queue', value: wait.wait.queue, retryAfterMs }) };
    }
    if (options.signal?.aborted === true) return { admitted: false, error: this.#cancelled(cls, request.kind) };
    return new Promise<Admission>((resolve) => {
      const signal = options.signal;
      const onAbort = () => {
        if (waiter.done) return;
        waiter.done = true;
        cls.waiting--;
        cls.refused++;
        resolve({ admitted: false, error: this.#cancelled(cls, request.kind) });
      };
      const waiter: Waiter = {
        principal: request.principal,
        kind: request.kind,
        since: now,
        deadline: now + wait.wait.timeoutMs,
        done: false,
        settle: (admission) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(admission);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      cls.queue.push(waiter);
      cls.waiting++;
      cls.queued++;
      // Queued behind waiters blocked only by their own identity, it may pass at once.
      this.#serve(cls, now);
      if (!waiter.done) this.#arm(Math.min(waiter.deadline, cls.refillAt), now);
    });
  }

  /**
   * New limits (a reload). Counts, tokens and waiters carry over by class name; a class no
   * longer configured keeps its last limits until what it holds is released and its queue
   * empties, while new requests naming it go to the default class.
   */
  update(settings: ThrottleSettings): void {
    const now = this.#clock.now();
    const next = new Map<string, ClassState>();
    for (const [name, cls] of settings.classes) {
      const state = this.#classes.get(name);
      if (state === undefined) next.set(name, new ClassState(cls, now, this.#rates));
      else {
        state.retune(cls, now);
        next.set(name, state);
      }
    }
    const kept = [...this.#classes.values()].filter((state) => !next.has(state.settings.name) && !state.idle);
    this.#classes = next;
    const fallback = next.get(settings.defaultClass);
    if (fallback === undefined) throw new TypeError(`the default class ${settings.defaultClass} is not among the classes`);
    this.#default = fallback;
    this.#ordered = [...next.values(), ...kept].sort(byPriority);
    // Raised limits may admit waiters now; lowered ones change nothing already held.
    this.#wake();
  }

  /** Per-class counts for metrics and the admin API. */
  snapshot(): ClassSnapshot[] {
    return this.#ordered.map((cls) => ({
      name: cls.settings.name,
      priority: cls.settings.priority,
      inFlight: cls.inFlight,
      sessions: cls.sessions,
      waiting: cls.waiting,
      identities: cls.identities.size,
      admitted: cls.admitted,
      refused: cls.refused,
      timedOut: cls.timedOut,
      queued: cls.queued,
      waitedMs: cls.waitedMs,
    }));
  }

  /** Stops the wake-up timer; waiters still queued are refused as timed out at once. */
  close(): void {
    this.#timer?.cancel();
    this.#timer = null;
    this.#timerAt = Infinity;
    for (const cls of this.#ordered) {
      for (const waiter of cls.queue) if (!waiter.done) this.#expire(cls, waiter);
      cls.queue = [];
      cls.head = 0;
    }
  }

  /** Serves a class with waiters whose capacity may be back (a release, a newcomer's clock read). */
  freed(cls: ClassState, now = this.#clock.now()): void {
    this.#serve(cls, now);
    if (cls.waiting !== 0) this.#arm(cls.refillAt, now);
  }

  /**
   * Admits the class's waiters that can go now, in order, and notes when a rate-blocked one
   * can next go. Stops at the first waiter a class-wide limit blocks: everyone behind it
   * would be blocked by the same limit (and, deadlines being in queue order, expires later).
   */
  #serve(cls: ClassState, now: number): void {
    const queue = cls.queue;
    let refillAt = Infinity;
    let classBlocked = false;
    for (let i = cls.head; i < queue.length; i++) {
      const waiter = queue[i]!;
      if (waiter.done) continue;
      if (now >= waiter.deadline) {
        this.#expire(cls, waiter);
        continue;
      }
      const identity = cls.identity(waiter.principal, now);
      const limit = cls.blocked(identity, waiter.kind, now);
      if (limit === null) {
        cls.take(identity, waiter.kind);
        waiter.done = true;
        cls.waiting--;
        cls.admitted++;
        const held = new Held(this, cls, identity, waiter.kind);
        held.waitedMs = now - waiter.since;
        cls.waitedMs += held.waitedMs;
        waiter.settle(held);
        continue;
      }
      const retry = cls.retryAfter(identity, limit);
      if (retry !== null) refillAt = Math.min(refillAt, now + retry);
      if (!limit.startsWith('identity-')) {
        classBlocked = true;
        break;
      }
    }
    cls.trim();
    cls.refillAt = refillAt;
    cls.classBlocked = classBlocked;
  }

  #expire(cls: ClassState, waiter: Waiter): void {
    waiter.done = true;
    cls.waiting--;
    cls.timedOut++;
    cls.refused++;
    const timeoutMs = waiter.deadline - waiter.since;
    waiter.settle({ admitted: false, error: throttleRefusal({ serviceClass: cls.settings.name, kind: waiter.kind, limit: 'timeout', value: timeoutMs, timeoutMs, retryAfterMs: null }) });
  }

  /** Serves every class, highest priority first, then sets the next wake-up. */
  #wake(): void {
    this.#timer?.cancel();
    this.#timer = null;
    this.#timerAt = Infinity;
    const now = this.#clock.now();
    let next = Infinity;
    for (const cls of this.#ordered) {
      if (cls.waiting === 0) continue;
      this.#serve(cls, now);
      next = Math.min(next, cls.refillAt, cls.nextDeadline);
    }
    if (next !== Infinity) this.#arm(next, now);
  }

  #arm(at: number, now: number): void {
    if (at === Infinity || (this.#timer !== null && this.#timerAt <= at)) return;
    this.#timer?.cancel();
    this.#timerAt = at;
    this.#timer = this.#clock.schedule(Math.max(0, at - now), () => this.#wake());
  }

  #refusal(cls: ClassState, identity: IdentityState | null, kind: AdmissionKind, limit: ThrottleLimit) {
    const s = cls.settings;
    const limits = limit.startsWith('identity-') ? s.perIdentity! : s;
    const rate = limit.endsWith('logins') ? limits.logins : limits.rate;
    const value = limit.endsWith('rate') || limit.endsWith('logins') ? rate!.perSecond : limit.endsWith('concurrency') ? limits.concurrency! : limits.sessions!;
    return throttleRefusal({ serviceClass: s.name, kind, limit, value, ...(rate === null ? {} : { burst: rate.burst }), retryAfterMs: cls.retryAfter(identity, limit) });
  }

  #cancelled(cls: ClassState, kind: AdmissionKind) {
    return throttleRefusal({ serviceClass: cls.settings.name, kind, limit: 'cancelled', value: 0, retryAfterMs: null });
  }
}

function byPriority(a: ClassState, b: ClassState): number {
  return b.settings.priority - a.settings.priority;
}
