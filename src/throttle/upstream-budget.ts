/**
 * The upstream connection budget of one server, shared by the service classes: at most
 * `connections` at once (kept under MariaDB's max_connections), at most a role's cap for that
 * role, and each class's `reserved` share kept free for it whatever the others hold. Pure
 * accounting; the engine asks before it opens (or takes from its pool) an upstream
 * connection and releases when the connection closes.
 *
 * Waiting (classes with `overLimit: { wait }`): when a connection frees, waiters are served
 * highest priority first, FIFO within a priority, so a higher class waiting is never passed
 * by a lower one, except by a lower class taking its own reserved share, which is exactly
 * what the reserve guarantees it. The same budget fits Firestore's concurrent streams.
 */
import { systemClock, type ThrottleClock, type Timer } from './clock.ts';
import type { Admission, WaitOptions } from './types.ts';
import { throttleRefusal, type ThrottleLimit } from './refusal.ts';
import type { BudgetSettings, ClassSettings, ThrottleSettings } from './settings.ts';

export interface BudgetRequest {
  readonly serviceClass: string;
  /** The upstream role the connection logs in as, for per-role caps. */
  readonly role?: string;
}

export interface BudgetSnapshot {
  readonly connections: number;
  readonly used: number;
  readonly byClass: Readonly<Record<string, number>>;
  readonly byRole: Readonly<Record<string, number>>;
  readonly waiting: number;
}

interface Waiter {
  readonly cls: string;
  readonly role: string | undefined;
  readonly priority: number;
  readonly seq: number;
  readonly since: number;
  readonly deadline: number;
  done: boolean;
  settle(admission: Admission): void;
}

/** A connection taken from the budget; given back once, whatever the reloads in between. */
class Lease {
  readonly admitted = true as const;
  waitedMs = 0;
  #budget: UpstreamBudget | null;
  readonly #cls: string;
  readonly #role: string | undefined;

  constructor(budget: UpstreamBudget, cls: string, role: string | undefined) {
    this.#budget = budget;
    this.#cls = cls;
    this.#role = role;
  }

  release(): void {
    const budget = this.#budget;
    if (budget === null) return;
    this.#budget = null;
    budget.giveBack(this.#cls, this.#role);
  }
}

export class UpstreamBudget {
  readonly #clock: ThrottleClock;
  #budget!: BudgetSettings;
  #classes!: ReadonlyMap<string, ClassSettings>;
  #defaultClass!: string;
  #reserved: [string, number][] = [];
  #used = 0;
  readonly #byClass = new Map<string, number>();
  readonly #byRole = new Map<string, number>();
  /** Live and finished waiters, ordered by priority (highest first), then arrival. */
  #waiters: Waiter[] = [];
  readonly #waitingByClass = new Map<string, number>();
  #seq = 0;
  #timer: Timer | null = null;
  #timerAt = Infinity;

  /** `streams`: the Firestore stream budget (throttle.firestore) instead of MariaDB's connections. */
  readonly #streams: boolean;
  constructor(settings: ThrottleSettings, options: { readonly clock?: ThrottleClock; readonly streams?: boolean } = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#streams = options.streams === true;
    this.update(settings);
  }

  /** A connection now, or the refusal naming the limit (never waits). */
  tryAcquire(request: BudgetRequest): Admission {
    const cls = this.#classOf(request.serviceClass);
    const limit = this.#blocked(cls.name, request.role);
    if (limit === null) return this.#take(cls.name, request.role);
    return { admitted: false, error: this.#refusal(cls.name, request.role, limit) };
  }

  /** A connection now (no promise), or for a class that waits, when one frees for it. Never rejects. */
  acquire(request: BudgetRequest, options: WaitOptions = {}): Admission | Promise<Admission> {
    const cls = this.#classOf(request.serviceClass);
    const limit = this.#blocked(cls.name, request.role);
    if (limit === null) return this.#take(cls.name, request.role);
    const wait = cls.overLimit;
    if (wait === 'refuse') return { admitted: false, error: this.#refusal(cls.name, request.role, limit) };
    const queued = this.#waitingByClass.get(cls.name) ?? 0;
    if (queued >= wait.wait.queue) {
      return { admitted: false, error: throttleRefusal({ serviceClass: cls.name, kind: 'session', limit: 'queue', value: wait.wait.queue, retryAfterMs: null }) };
    }
    const signal = options.signal;
    if (signal?.aborted === true) return { admitted: false, error: throttleRefusal({ serviceClass: cls.name, kind: 'session', limit: 'cancelled', value: 0, retryAfterMs: null }) };
    const now = this.#clock.now();
    return new Promise<Admission>((resolve) => {
      const onAbort = () => {
        if (waiter.done) return;
        this.#finish(waiter);
        resolve({ admitted: false, error: throttleRefusal({ serviceClass: cls.name, kind: 'session', limit: 'cancelled', value: 0, retryAfterMs: null }) });
      };
      const waiter: Waiter = {
        cls: cls.name,
        role: request.role,
        priority: cls.priority,
        seq: this.#seq++,
        since: now,
        deadline: now + wait.wait.timeoutMs,
        done: false,
        settle: (admission) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(admission);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#insert(waiter);
      this.#arm(waiter.deadline, now);
    });
  }

  /** New budget and classes (a reload): connections held stay counted under their class and role. */
  update(settings: ThrottleSettings): void {
    const budget = this.#streams ? settings.firestore : settings.upstream;
    if (budget === null) throw new TypeError(`UpstreamBudget needs throttle.${this.#streams ? 'firestore' : 'upstream'}`);
    this.#budget = budget;
    this.#classes = settings.classes;
    this.#defaultClass = settings.defaultClass;
    this.#reserved = Object.entries(budget.reserved);
    // A raised budget may serve waiters now.
    this.#serve(this.#clock.now());
  }

  snapshot(): BudgetSnapshot {
    return {
      connections: this.#budget.connections,
      used: this.#used,
      byClass: Object.fromEntries(this.#byClass),
      byRole: Object.fromEntries(this.#byRole),
      waiting: this.#waiters.filter((waiter) => !waiter.done).length,
    };
  }

  /** Stops the deadline timer and refuses every waiter as timed out. */
  close(): void {
    this.#timer?.cancel();
    this.#timer = null;
    this.#timerAt = Infinity;
    for (const waiter of this.#waiters) if (!waiter.done) this.#expire(waiter);
    this.#waiters = [];
  }

  /** Called by a Lease's release. */
  giveBack(cls: string, role: string | undefined): void {
    this.#used--;
    this.#byClass.set(cls, (this.#byClass.get(cls) ?? 1) - 1);
    if (role !== undefined) this.#byRole.set(role, (this.#byRole.get(role) ?? 1) - 1);
    if (this.#waiters.length !== 0) this.#serve(this.#clock.now());
  }

  #classOf(name: string): ClassSettings {
    return this.#classes.get(name) ?? this.#classes.get(this.#defaultClass)!;
  }

  /** The limit that stops `cls` taking a connection for `role` now, or null. */
  #blocked(cls: string, role: string | undefined): ThrottleLimit | null {
    if (role !== undefined) {
      const cap = this.#budget.roles[role];
      if (cap !== undefined && (this.#byRole.get(role) ?? 0) >= cap) return 'upstream-role';
    }
    // What other classes have reserved and not yet used is not free for this one.
    let kept = 0;
    for (const [name, share] of this.#reserved) if (name !== cls) kept += Math.max(0, share - (this.#byClass.get(name) ?? 0));
    return this.#budget.connections - this.#used - kept >= 1 ? null : 'upstream-connections';
  }

  #take(cls: string, role: string | undefined): Lease {
    this.#used++;
    this.#byClass.set(cls, (this.#byClass.get(cls) ?? 0) + 1);
    if (role !== undefined) this.#byRole.set(role, (this.#byRole.get(role) ?? 0) + 1);
    return new Lease(this, cls, role);
  }

  #insert(waiter: Waiter): void {
    // After every waiter of the same or a higher priority: FIFO within a priority.
    let lo = 0;
    let hi = this.#waiters.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#waiters[mid]!.priority >= waiter.priority) lo = mid + 1;
      else hi = mid;
    }
    this.#waiters.splice(lo, 0, waiter);
    this.#waitingByClass.set(waiter.cls, (this.#waitingByClass.get(waiter.cls) ?? 0) + 1);
  }

  #finish(waiter: Waiter): void {
    waiter.done = true;
    this.#waitingByClass.set(waiter.cls, this.#waitingByClass.get(waiter.cls)! - 1);
  }

  /**
   * Admits waiters in order while connections are free. A waiter that cannot go (its role is
   * at its cap, or only others' reserves are left) does not stop a later one that can: that
   * one takes its own reserve or another role's connection, nothing the earlier could use.
   */
  #serve(now: number): void {
    let next = Infinity;
    const kept: Waiter[] = [];
    for (const waiter of this.#waiters) {
      if (waiter.done) continue;
      if (now >= waiter.deadline) {
        this.#expire(waiter);
        continue;
      }
      if (this.#used < this.#budget.connections && this.#blocked(waiter.cls, waiter.role) === null) {
        this.#finish(waiter);
        const lease = this.#take(waiter.cls, waiter.role);
        lease.waitedMs = now - waiter.since;
        waiter.settle(lease);
        continue;
      }
      kept.push(waiter);
      next = Math.min(next, waiter.deadline);
    }
    this.#waiters = kept;
    if (next !== Infinity) this.#arm(next, now);
  }

  #expire(waiter: Waiter): void {
    this.#finish(waiter);
    const timeoutMs = waiter.deadline - waiter.since;
    waiter.settle({ admitted: false, error: throttleRefusal({ serviceClass: waiter.cls, kind: 'session', limit: 'timeout', value: timeoutMs, timeoutMs, retryAfterMs: null }) });
  }

  #arm(at: number, now: number): void {
    if (this.#timer !== null && this.#timerAt <= at) return;
    this.#timer?.cancel();
    this.#timerAt = at;
    this.#timer = this.#clock.schedule(Math.max(0, at - now), () => {
      this.#timer = null;
      this.#timerAt = Infinity;
      this.#serve(this.#clock.now());
    });
  }

  #refusal(cls: string, role: string | undefined, blocked: ThrottleLimit) {
    const limit: ThrottleLimit = this.#streams && blocked === 'upstream-connections' ? 'upstream-streams' : blocked;
    const value = limit === 'upstream-role' ? this.#budget.roles[role!]! : this.#budget.connections;
    return throttleRefusal({ serviceClass: cls, kind: 'session', limit, value, retryAfterMs: null });
  }
}
