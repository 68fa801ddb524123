/**
 * A throttle clock that moves only when a test says so; timers fire in time order as it
 * advances, each at its own instant.
 */
import type { ThrottleClock, Timer } from '../../../src/throttle/index.ts';

interface Pending {
  readonly at: number;
  readonly fn: () => void;
  cancelled: boolean;
}

export class ManualClock implements ThrottleClock {
  #now: number;
  #timers: Pending[] = [];

  constructor(start = 1_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  schedule(ms: number, fn: () => void): Timer {
    const pending: Pending = { at: this.#now + Math.max(0, ms), fn, cancelled: false };
    this.#timers.push(pending);
    return { cancel: () => void (pending.cancelled = true) };
  }

  /** Timers still to fire (not cancelled). */
  get pending(): number {
    return this.#timers.filter((timer) => !timer.cancelled).length;
  }

  /** Moves time without running the timers that fall due: an event loop running late. */
  skip(ms: number): void {
    this.#now += ms;
  }

  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      this.#timers = this.#timers.filter((timer) => !timer.cancelled);
      const due = this.#timers.filter((timer) => timer.at <= target).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.#timers.splice(this.#timers.indexOf(due), 1);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = target;
  }
}

/** Lets promise callbacks settled by timers or releases run. */
export const settled = () => new Promise<void>((resolve) => setImmediate(resolve));
