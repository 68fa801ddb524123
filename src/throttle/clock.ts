/**
 * Time for the throttle: a monotonic now (wall-clock steps must not refill or drain buckets)
 * and one-shot timers for queue deadlines and refill wake-ups. Tests pass a manual clock;
 * timers never keep the process alive.
 */
export interface Timer {
  cancel(): void;
}

export interface ThrottleClock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Calls `fn` once after `ms`, without holding the process open. */
  schedule(ms: number, fn: () => void): Timer;
}

export const systemClock: ThrottleClock = Object.freeze({
  now: () => performance.now(),
  schedule(ms: number, fn: () => void): Timer {
    const timer = setTimeout(fn, Math.max(0, Math.ceil(ms)));
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
});
