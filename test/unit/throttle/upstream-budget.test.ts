/**
 * The upstream connection budget: reserved shares no other class can take, role caps,
 * waiters served by priority (a critical waiter before batch waiters queued earlier), and a
 * property that a higher class is never passed by a lower one beyond the lower's own reserve,
 * whatever the order of arrivals, releases and deadlines.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { UpstreamBudget, isThrottledError, type Admission } from '../../../src/throttle/index.ts';
import { ManualClock, settled } from './manual-clock.ts';
import { settingsOf } from './settings-fixture.ts';

const WAIT = { wait: { queue: 100, timeout: '10s' } } as const;
const CLASSES = {
  critical: { priority: 100, overLimit: WAIT },
  interactive: { priority: 50, overLimit: WAIT },
  batch: { priority: 0, overLimit: WAIT },
};

function held(admission: Admission | Promise<Admission>): Admission & { admitted: true } {
  assert.ok(!(admission instanceof Promise) && admission.admitted, 'expected a connection at once');
  return admission;
}

describe('UpstreamBudget', () => {
  it('keeps a class reserved share from every other class', () => {
    const budget = new UpstreamBudget(settingsOf({ defaultClass: 'batch', classes: CLASSES, upstream: { connections: 5, reserved: { critical: 2 } } }), { clock: new ManualClock() });
    for (let i = 0; i < 3; i++) held(budget.tryAcquire({ serviceClass: 'batch' }));
    const refused = budget.tryAcquire({ serviceClass: 'interactive' });
    assert.ok(!refused.admitted && isThrottledError(refused.error));
    assert.equal(refused.error.code, 'MG_UPSTREAM_BUSY');
    assert.equal(refused.error.limit, 'upstream-connections');
    assert.match(refused.error.message, /no upstream connection is free for service class "interactive" \(budget 5, what is left is reserved for other classes\)/);
    held(budget.tryAcquire({ serviceClass: 'critical' }));
    held(budget.tryAcquire({ serviceClass: 'critical' }));
    assert.equal(budget.tryAcquire({ serviceClass: 'critical' }).admitted, false, 'the whole budget is used');
    assert.deepEqual(budget.snapshot(), { connections: 5, used: 5, byClass: { batch: 3, critical: 2 }, byRole: {}, waiting: 0 });
  });

  it('a class beyond its reserve competes for the shared rest like any other', () => {
    const budget = new UpstreamBudget(settingsOf({ defaultClass: 'batch', classes: CLASSES, upstream: { connections: 4, reserved: { critical: 1, batch: 1 } } }), { clock: new ManualClock() });
    held(budget.tryAcquire({ serviceClass: 'critical' }));
    held(budget.tryAcquire({ serviceClass: 'critical' }));
    held(budget.tryAcquire({ serviceClass: 'critical' }));
    assert.equal(budget.tryAcquire({ serviceClass: 'critical' }).admitted, false, "batch's reserve is not critical's either");
    held(budget.tryAcquire({ serviceClass: 'batch' }));
  });

  it('caps a role inside the budget', () => {
    const budget = new UpstreamBudget(settingsOf({ defaultClass: 'batch', classes: CLASSES, upstream: { connections: 10, roles: { reporting: 2 } } }), { clock: new ManualClock() });
    const first = held(budget.tryAcquire({ serviceClass: 'batch', role: 'reporting' }));
    held(budget.tryAcquire({ serviceClass: 'critical', role: 'reporting' }));
    const refused = budget.tryAcquire({ serviceClass: 'critical', role: 'reporting' });
    assert.ok(!refused.admitted && isThrottledError(refused.error) && refused.error.limit === 'upstream-role');
    assert.match(refused.error.message, /cap 2/);
    held(budget.tryAcquire({ serviceClass: 'batch', role: 'shop' }));
    first.release();
    first.release();
    assert.equal(budget.snapshot().byRole['reporting'], 1, 'released once');
  });

  it('serves a critical waiter before batch waiters queued earlier', async () => {
    const clock = new ManualClock();
    const budget = new UpstreamBudget(settingsOf({ defaultClass: 'batch', classes: CLASSES, upstream: { connections: 2 } }), { clock });
    const a = held(budget.acquire({ serviceClass: 'batch' }));
    const b = held(budget.acquire({ serviceClass: 'batch' }));
    const order: string[] = [];
    const wait = (name: string, serviceClass: string) => {
      const result = budget.acquire({ serviceClass });
      assert.ok(result instanceof Promise);
      void result.then((admission) => admission.admitted && order.push(name));
    };
    wait('batch-1', 'batch');
    wait('batch-2', 'batch');
    clock.advance(5);
    wait('interactive-1', 'interactive');
    wait('critical-1', 'critical');
    a.release();
    await settled();
    assert.deepEqual(order, ['critical-1']);
    b.release();
    await settled();
    assert.deepEqual(order, ['critical-1', 'interactive-1']);
  });

  it('refuses a waiter at its deadline, and a full queue at once', async () => {
    const clock = new ManualClock();
    const budget = new UpstreamBudget(settingsOf({ defaultClass: 'batch', classes: { batch: { overLimit: { wait: { queue: 1, timeout: '2s' } } } }, upstream: { connections: 1 } }), { clock });
    held(budget.acquire({ serviceClass: 'batch' }));
    let outcome: Admission | null = null;
    void (budget.acquire({ serviceClass: 'batch' }) as Promise<Admission>).then((value) => (outcome = value));
    const full = budget.acquire({ serviceClass: 'batch' });
    assert.ok(!(full instanceof Promise) && !full.admitted && isThrottledError(full.error) && full.error.limit === 'queue');
    clock.advance(2000);
    await settled();
    const expired = outcome as Admission | null;
    assert.ok(expired !== null && !expired.admitted && isThrottledError(expired.error));
    assert.equal(expired.error.code, 'MG_THROTTLE_TIMEOUT');
    assert.equal(budget.snapshot().waiting, 0);
  });

  it('a reload keeps connections counted under their class and serves waiters a raised budget allows', async () => {
    const clock = new ManualClock();
    const budget = new UpstreamBudget(settingsOf({ defaultClass: 'batch', classes: CLASSES, upstream: { connections: 1 } }), { clock });
    const first = held(budget.acquire({ serviceClass: 'batch' }));
    let outcome: Admission | null = null;
    void (budget.acquire({ serviceClass: 'critical' }) as Promise<Admission>).then((value) => (outcome = value));
    budget.update(settingsOf({ defaultClass: 'batch', classes: CLASSES, upstream: { connections: 2 } }));
    await settled();
    assert.ok((outcome as Admission | null)?.admitted);
    first.release();
    assert.deepEqual(budget.snapshot().byClass, { batch: 0, critical: 1 });
  });

  it('a higher class is never passed by a lower one beyond its reserve, and never waits while it could go (property)', async () => {
    const names = ['critical', 'interactive', 'batch'] as const;
    const priority = { critical: 100, interactive: 50, batch: 0 } as const;
    const step = fc.oneof(
      fc.record({ op: fc.constant('arrive' as const), cls: fc.constantFrom(...names) }),
      fc.record({ op: fc.constant('release' as const), pick: fc.nat() }),
      fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 3000 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 80 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 2 }), async (steps, connections, criticalReserve) => {
        const clock = new ManualClock();
        const reserved: Record<string, number> = criticalReserve === 0 ? {} : { critical: Math.min(criticalReserve, connections) };
        const budget = new UpstreamBudget(settingsOf({ defaultClass: 'batch', classes: CLASSES, upstream: { connections, reserved } }), { clock });
        const leases: { cls: (typeof names)[number]; admission: Admission & { admitted: true } }[] = [];
        const waiting: { cls: (typeof names)[number]; seq: number }[] = [];
        let seq = 0;
        const failures: unknown[] = [];
        const heldBy = (cls: string) => leases.filter((lease) => lease.cls === cls).length;
        const onGrant = (cls: (typeof names)[number], admission: Admission, mySeq: number | null) => {
          if (mySeq !== null) waiting.splice(waiting.findIndex((w) => w.seq === mySeq), 1);
          if (!admission.admitted) return;
          // Granted while a strictly higher class waits: only from the grantee's own reserve.
          const higherWaits = waiting.some((w) => priority[w.cls] > priority[cls]);
          if (higherWaits) {
            const reserve = reserved[cls] ?? 0;
            assert.ok(heldBy(cls) < reserve, `${cls} took a connection while a higher class waited`);
          }
          // FIFO within a class: no earlier waiter of the same class is still waiting.
          if (mySeq !== null) assert.ok(!waiting.some((w) => w.cls === cls && w.seq < mySeq), `${cls} served out of order`);
          leases.push({ cls, admission });
        };
        for (const s of steps) {
          if (s.op === 'arrive') {
            const result = budget.acquire({ serviceClass: s.cls });
            if (result instanceof Promise) {
              const mySeq = seq++;
              waiting.push({ cls: s.cls, seq: mySeq });
              // A failed assertion in a callback would be an unhandled rejection: keep it for the step.
              void result.then((admission) => onGrant(s.cls, admission, mySeq)).catch((error: unknown) => failures.push(error));
            } else onGrant(s.cls, result, null);
          } else if (s.op === 'release' && leases.length > 0) {
            leases.splice(s.pick % leases.length, 1)[0]!.admission.release();
          } else if (s.op === 'tick') clock.advance(s.ms);
          await settled();
          if (failures.length > 0) throw failures[0];
          // Work-conserving: nobody waits who could take a connection now.
          const snap = budget.snapshot();
          assert.equal(snap.used, leases.length);
          assert.ok(snap.used <= connections);
          for (const w of waiting) {
            const probe = budget.tryAcquire({ serviceClass: w.cls });
            if (probe.admitted) {
              probe.release();
              assert.fail(`a ${w.cls} waiter could have gone`);
            }
          }
        }
        budget.close();
      }),
      { numRuns: 200 },
    );
  });
});
