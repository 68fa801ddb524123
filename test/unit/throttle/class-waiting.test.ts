/**
 * ClassThrottle's waiting path on a manual clock: a bounded queue with a deadline, FIFO
 * inside a class, refill and release wake-ups, cancellation, and reloads that carry counts,
 * tokens and waiters over by class name.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ClassThrottle, isThrottledError, type Admission, type AdmissionRequest } from '../../../src/throttle/index.ts';
import { ManualClock, settled } from './manual-clock.ts';
import { settingsOf } from './settings-fixture.ts';

const A = 'spiffe://cluster.local/ns/shop/sa/a';
const B = 'spiffe://cluster.local/ns/shop/sa/b';
const stmt = (serviceClass: string, principal = A): AdmissionRequest => ({ engine: 'mysql', kind: 'statement', serviceClass, principal });
const WAIT = { wait: { queue: 2, timeout: '500ms' } } as const;

/** Records when each pending admission settles. */
function track(result: Admission | Promise<Admission>): () => Admission | null {
  let settledWith: Admission | null = null;
  if (result instanceof Promise) void result.then((value) => (settledWith = value));
  else settledWith = result;
  return () => settledWith;
}

describe('ClassThrottle: waiting', () => {
  it('admits at once without a promise while under the limits', () => {
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { concurrency: 1, overLimit: WAIT } } }), { clock: new ManualClock() });
    const now = throttle.admitOrWait(stmt('default'));
    assert.ok(!(now instanceof Promise) && now.admitted);
  });

  it('a waiter is admitted when a slot is released, FIFO, with how long it waited', async () => {
    const clock = new ManualClock();
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { concurrency: 1, overLimit: WAIT } } }), { clock });
    const held = throttle.admitOrWait(stmt('default'));
    assert.ok(!(held instanceof Promise) && held.admitted);
    const first = track(throttle.admitOrWait(stmt('default', A)));
    clock.advance(10);
    const second = track(throttle.admitOrWait(stmt('default', B)));
    await settled();
    assert.equal(first(), null);
    clock.advance(30);
    held.release();
    await settled();
    const admitted = first();
    assert.ok(admitted?.admitted, 'the first waiter goes first');
    assert.equal(admitted.waitedMs, 40);
    assert.equal(second(), null, 'the second waits for the next slot');
    admitted.release();
    await settled();
    assert.ok(second()?.admitted);
    assert.equal(throttle.snapshot()[0]!.waitedMs, 40 + 30);
  });

  it('the queue is bounded: one more is refused at once, naming the queue', () => {
    const throttle = new ClassThrottle(settingsOf({ classes: { batch: { concurrency: 1, overLimit: WAIT } }, defaultClass: 'batch' }), { clock: new ManualClock() });
    throttle.admit(stmt('batch'));
    assert.ok(throttle.admitOrWait(stmt('batch')) instanceof Promise);
    assert.ok(throttle.admitOrWait(stmt('batch')) instanceof Promise);
    const third = throttle.admitOrWait(stmt('batch'));
    assert.ok(!(third instanceof Promise) && !third.admitted);
    assert.ok(isThrottledError(third.error));
    assert.equal(third.error.code, 'MG_THROTTLED');
    assert.equal(third.error.limit, 'queue');
    assert.match(third.error.message, /service class "batch" is over its limits and its wait queue is full \(2 waiting\).*throttle\.classes\.batch\.overLimit\.wait\.queue/);
    assert.equal(throttle.snapshot()[0]!.waiting, 2);
  });

  it('a waiter past its deadline is refused with MG_THROTTLE_TIMEOUT, and its place freed', async () => {
    const clock = new ManualClock();
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { concurrency: 1, overLimit: WAIT } } }), { clock });
    const held = throttle.admit(stmt('default'));
    const waiter = track(throttle.admitOrWait(stmt('default')));
    clock.advance(499);
    await settled();
    assert.equal(waiter(), null);
    clock.advance(1);
    await settled();
    const value = waiter();
    assert.ok(value !== null && !value.admitted && isThrottledError(value.error));
    assert.equal(value.error.code, 'MG_THROTTLE_TIMEOUT');
    assert.equal(value.error.limit, 'timeout');
    assert.match(value.error.message, /waited 500 ms in service class "default"'s queue without being admitted/);
    const snap = throttle.snapshot()[0]!;
    assert.equal(snap.waiting, 0);
    assert.equal(snap.timedOut, 1);
    assert.equal(clock.pending, 0, 'no timer left behind');
    if (held.admitted) held.release();
    assert.equal(throttle.snapshot()[0]!.inFlight, 0, 'the expired waiter took nothing');
  });

  it('a rate-limited waiter is woken by the refill, not by polling', async () => {
    const clock = new ManualClock();
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { rate: { perSecond: 10, burst: 1 }, overLimit: { wait: { queue: 10, timeout: '5s' } } } } }), { clock });
    assert.ok(throttle.admit(stmt('default')).admitted);
    const waiters = [track(throttle.admitOrWait(stmt('default'))), track(throttle.admitOrWait(stmt('default')))];
    assert.equal(clock.pending, 1, 'one timer for the class');
    clock.advance(99);
    await settled();
    assert.equal(waiters[0]!(), null);
    clock.advance(1);
    await settled();
    assert.ok(waiters[0]!()?.admitted);
    assert.equal(waiters[1]!(), null);
    clock.advance(100);
    await settled();
    assert.ok(waiters[1]!()?.admitted);
    assert.equal(clock.pending, 0);
  });

  it('a newcomer never takes a refilled token ahead of a waiter', async () => {
    const clock = new ManualClock();
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { rate: { perSecond: 10, burst: 1 }, overLimit: { wait: { queue: 10, timeout: '5s' } } } } }), { clock });
    throttle.admit(stmt('default'));
    const waiter = track(throttle.admitOrWait(stmt('default', A)));
    // The refill is due, but its timer has not run yet (a busy event loop) when the newcomer asks.
    clock.skip(100);
    const late = throttle.admit(stmt('default', B));
    await settled();
    assert.ok(waiter()?.admitted, 'the waiter got the refilled token');
    assert.equal(late.admitted, false, 'the newcomer did not');
  });

  it('a waiter blocked only by its own identity does not hold back other identities', async () => {
    const clock = new ManualClock();
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { concurrency: 10, perIdentity: { concurrency: 1 }, overLimit: { wait: { queue: 10, timeout: '1s' } } } } }), { clock });
    const a = throttle.admit(stmt('default', A));
    assert.ok(a.admitted);
    const aWaits = track(throttle.admitOrWait(stmt('default', A)));
    const b = throttle.admitOrWait(stmt('default', B));
    assert.ok(!(b instanceof Promise) && b.admitted, 'B passes A, which waits for its own slot');
    a.release();
    await settled();
    assert.ok(aWaits()?.admitted);
  });

  it('an aborted wait is refused as cancelled and leaves the queue', async () => {
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { concurrency: 1, overLimit: WAIT } } }), { clock: new ManualClock() });
    const held = throttle.admit(stmt('default'));
    const controller = new AbortController();
    const waiter = track(throttle.admitOrWait(stmt('default'), { signal: controller.signal }));
    controller.abort();
    await settled();
    const value = waiter();
    assert.ok(value !== null && !value.admitted && isThrottledError(value.error) && value.error.limit === 'cancelled');
    assert.equal(throttle.snapshot()[0]!.waiting, 0);
    if (held.admitted) held.release();
    assert.equal(throttle.snapshot()[0]!.inFlight, 0, 'nothing was handed to the cancelled waiter');
  });

  it('with the system clock, a deadline fires on a real timer that does not hold the process', async () => {
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { concurrency: 1, overLimit: { wait: { queue: 1, timeout: '20ms' } } } } }));
    throttle.admit(stmt('default'));
    const started = performance.now();
    // The throttle's timer is unref'd; a waiting caller's socket is what keeps a real process up.
    const socket = setTimeout(() => {}, 5000);
    const outcome = await throttle.admitOrWait(stmt('default'));
    clearTimeout(socket);
    assert.ok(!outcome.admitted && isThrottledError(outcome.error) && outcome.error.limit === 'timeout');
    assert.ok(performance.now() - started >= 19, 'not before its deadline');
  });

  it('a long queue costs what each release serves, not the queue length', async () => {
    const clock = new ManualClock();
    const n = 20_000;
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { concurrency: 1, overLimit: { wait: { queue: n, timeout: '1m' } } } } }), { clock });
    let current = throttle.admit(stmt('default'));
    const pending = Array.from({ length: n }, (_, i) => throttle.admitOrWait(stmt('default', `spiffe://t/${i}`)) as Promise<Admission>);
    const started = performance.now();
    for (const next of pending) {
      if (current.admitted) current.release();
      current = await next;
      assert.ok(current.admitted);
    }
    assert.ok(performance.now() - started < 5000, `${n} hand-overs took ${Math.round(performance.now() - started)} ms`);
  });

  it('FIFO inside a class under random arrivals and releases (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom('arrive', 'release', 'tick'), { minLength: 1, maxLength: 60 }), async (steps) => {
        const clock = new ManualClock();
        const throttle = new ClassThrottle(settingsOf({ classes: { default: { concurrency: 2, overLimit: { wait: { queue: 1000, timeout: '10m' } } } } }), { clock });
        const order: number[] = [];
        const held: Admission[] = [];
        let n = 0;
        for (const step of steps) {
          if (step === 'arrive') {
            const id = n++;
            const result = throttle.admitOrWait(stmt('default', `spiffe://t/${id}`));
            if (result instanceof Promise) void result.then((admission) => (order.push(id), held.push(admission)));
            else (order.push(id), held.push(result));
          } else if (step === 'release') {
            const admission = held.shift();
            if (admission?.admitted) admission.release();
          } else clock.advance(1000);
          await settled();
        }
        assert.deepEqual(order, [...order].sort((x, y) => x - y));
        assert.ok(throttle.snapshot()[0]!.inFlight <= 2);
      }),
      { numRuns: 100 },
    );
  });
});

describe('ClassThrottle: reload', () => {
  it('carries counts over by class name: held admissions count against the new limits, and release once', () => {
    const clock = new ManualClock();
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { concurrency: 5, sessions: 5 } } }), { clock });
    const held = [0, 1, 2].map(() => throttle.admit(stmt('default')));
    const sessions = [0, 1].map(() => throttle.admit({ ...stmt('default'), kind: 'session' }));
    throttle.update(settingsOf({ classes: { default: { concurrency: 3, sessions: 2 } } }));
    assert.equal(throttle.admit(stmt('default')).admitted, false, 'three held already under the new limit of 3');
    assert.equal(throttle.admit({ ...stmt('default'), kind: 'session' }).admitted, false);
    for (const admission of held) if (admission.admitted) admission.release();
    for (const admission of sessions) if (admission.admitted) admission.release();
    const snap = throttle.snapshot()[0]!;
    assert.equal(snap.inFlight, 0);
    assert.equal(snap.sessions, 0);
    assert.ok(throttle.admit(stmt('default')).admitted);
  });

  it('keeps the tokens spent (capped by a new burst) rather than granting a fresh burst', () => {
    const clock = new ManualClock();
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { rate: { perSecond: 1, burst: 10 } } } }), { clock });
    for (let i = 0; i < 10; i++) throttle.admit(stmt('default'));
    throttle.update(settingsOf({ classes: { default: { rate: { perSecond: 2, burst: 20 } } } }));
    assert.equal(throttle.admit(stmt('default')).admitted, false, 'an emptied bucket stays empty');
    clock.advance(500);
    assert.equal(throttle.admit(stmt('default')).admitted, true, 'and refills at the new rate');
  });

  it('a removed class keeps its held slots and waiters until they finish; new requests go to the default', async () => {
    const clock = new ManualClock();
    const throttle = new ClassThrottle(settingsOf({ classes: { default: {}, batch: { concurrency: 1, overLimit: WAIT } } }), { clock });
    const held = throttle.admit(stmt('batch'));
    const waiter = track(throttle.admitOrWait(stmt('batch')));
    throttle.update(settingsOf({ classes: { default: { concurrency: 100 } } }));
    assert.ok(throttle.admit(stmt('batch')).admitted, 'limited as default now');
    assert.deepEqual(throttle.snapshot().map((s) => [s.name, s.inFlight, s.waiting]), [['default', 1, 0], ['batch', 1, 1]]);
    if (held.admitted) held.release();
    await settled();
    assert.ok(waiter()?.admitted, 'the waiter queued before the reload is served');
  });

  it('queued callers get a new timeout, counted from when each began to wait', async () => {
    const clock = new ManualClock();
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { concurrency: 1, overLimit: { wait: { queue: 10, timeout: '10s' } } } } }), { clock });
    throttle.admit(stmt('default'));
    const early = track(throttle.admitOrWait(stmt('default')));
    clock.advance(1000);
    const late = track(throttle.admitOrWait(stmt('default')));
    throttle.update(settingsOf({ classes: { default: { concurrency: 1, overLimit: { wait: { queue: 10, timeout: '2s' } } } } }));
    clock.advance(1000);
    await settled();
    assert.equal(early()?.admitted, false, 'waited 2 s: out');
    assert.equal(late(), null);
    clock.advance(1000);
    await settled();
    assert.equal(late()?.admitted, false);
    assert.equal(clock.pending, 0);
  });

  it('raised limits admit waiters at once', async () => {
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { concurrency: 1, overLimit: WAIT } } }), { clock: new ManualClock() });
    throttle.admit(stmt('default'));
    const waiter = track(throttle.admitOrWait(stmt('default')));
    throttle.update(settingsOf({ classes: { default: { concurrency: 2, overLimit: WAIT } } }));
    await settled();
    assert.ok(waiter()?.admitted);
  });
});
