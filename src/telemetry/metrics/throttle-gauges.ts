/**
 * Service classes (the throttle stage), read from the throttle's own counts at scrape time:
 * what each class admitted, refused, queued and how long its callers waited. Class names come
 * from the configuration, so the series stay few.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** What the throttle says of each class (ClassThrottle.snapshot()). */
export interface ThrottleClassCounts {
  readonly name: string;
  readonly inFlight: number;
  readonly sessions: number;
  readonly waiting: number;
  readonly admitted: number;
  readonly refused: number;
  readonly timedOut: number;
  readonly queued: number;
  /** Total ms admitted waiters spent queued. */
  readonly waitedMs: number;
}

export type ThrottleSource = () => readonly ThrottleClassCounts[] | null;

/** Rates shared through Redis (throttle.shared): SharedRates.state. */
export interface SharedRatesCounts {
  readonly mode: 'shared' | 'local';
  readonly fallbacks: number;
  readonly replicas: number;
}

export type SharedRatesSource = () => SharedRatesCounts | null;

export function registerThrottleMetrics(registry: Registry, source: ThrottleSource, shared: SharedRatesSource = () => null): void {
  const registers = [registry];
  // Counters and gauges per class differ only in how a value is written: the same collect.
  const eachClass = (reset: () => void, write: (labels: { class: string }, value: number) => void, read: (c: ThrottleClassCounts) => number) => {
    const classes = source();
    if (classes === null) return;
    reset();
    for (const c of classes) write({ class: c.name }, read(c));
  };
  const counter = (name: string, help: string, read: (c: ThrottleClassCounts) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['class'],
      registers,
      collect() {
        eachClass(() => this.reset(), (labels, value) => this.inc(labels, value), read);
      },
    });
  const gauge = (name: string, help: string, read: (c: ThrottleClassCounts) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['class'],
      registers,
      collect() {
        eachClass(() => this.reset(), (labels, value) => this.set(labels, value), read);
      },
    });
  counter('meshgate_throttle_admitted_total', 'Sessions, statements and calls a service class admitted (at once or after waiting).', (c) => c.admitted);
  counter('meshgate_throttle_queued_total', 'Requests a service class queued because it was over a limit.', (c) => c.queued);
  new Counter({
    name: 'meshgate_throttle_refused_total',
    help: 'Requests a service class refused, by reason: limit (at once, MG_THROTTLED) or timeout (waited too long, MG_THROTTLE_TIMEOUT).',
    labelNames: ['class', 'reason'],
    registers,
    collect() {
      const classes = source();
      if (classes === null) return;
      this.reset();
      for (const c of classes) {
        // The throttle counts a timeout among its refusals too.
        this.inc({ class: c.name, reason: 'limit' }, c.refused - c.timedOut);
        this.inc({ class: c.name, reason: 'timeout' }, c.timedOut);
      }
    },
  });
  counter('meshgate_throttle_queue_wait_seconds_total', 'Time admitted requests spent waiting in their service class queue.', (c) => c.waitedMs / 1000);
  gauge('meshgate_throttle_waiting', 'Requests waiting in a service class queue now.', (c) => c.waiting);
  gauge('meshgate_throttle_in_flight', 'Statements and calls a service class has in flight now.', (c) => c.inFlight);
  new Gauge({
    name: 'meshgate_throttle_shared',
    help: 'With throttle.shared: 1 while rate limits are shared through Redis, 0 while this replica has fallen back to local buckets (Redis unreachable or slow).',
    registers,
    collect() {
      const state = shared();
      if (state !== null) this.set(state.mode === 'shared' ? 1 : 0);
    },
  });
  new Counter({
    name: 'meshgate_throttle_shared_fallbacks_total',
    help: 'Times this replica fell back from Redis-shared rates to local buckets.',
    registers,
    collect() {
      const state = shared();
      if (state === null) return;
      this.reset();
      this.inc(state.fallbacks);
    },
  });
  new Gauge({
    name: 'meshgate_throttle_shared_replicas',
    help: 'Replicas Redis last reported sharing the rate limits.',
    registers,
    collect() {
      const state = shared();
      if (state !== null) this.set(state.replicas);
    },
  });
}
