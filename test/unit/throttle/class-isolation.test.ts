/**
 * Classes in ClassThrottle have limits of their own, so a lower class's load cannot starve a
 * higher one: whatever a batch flood does between them, a critical caller's sequence of
 * arrivals, releases and clock steps gets exactly the outcomes it gets alone. (Capacity the
 * classes share, the upstream connections, is where priority decides: upstream-budget.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ClassThrottle, type Admission } from '../../../src/throttle/index.ts';
import { ManualClock, settled } from './manual-clock.ts';
import { settingsOf } from './settings-fixture.ts';

const SETTINGS = settingsOf({
  defaultClass: 'batch',
  classes: {
    critical: { priority: 100, rate: { perSecond: 20, burst: 3 }, concurrency: 2, overLimit: { wait: { queue: 5, timeout: '300ms' } } },
    batch: { priority: 0, rate: { perSecond: 5, burst: 2 }, concurrency: 1, overLimit: { wait: { queue: 50, timeout: '2s' } } },
  },
});

type Op = { readonly who: 'critical' | 'batch'; readonly op: 'arrive' | 'release' } | { readonly who: 'clock'; readonly ms: number };

/** The outcomes of critical's requests, in the order they settled: 'a<n>' admitted, 'r<n>:<limit>' refused. */
async function criticalOutcomes(ops: readonly Op[]): Promise<string[]> {
  const clock = new ManualClock();
  const throttle = new ClassThrottle(SETTINGS, { clock });
  const outcomes: string[] = [];
  const held: Record<'critical' | 'batch', (Admission & { admitted: true })[]> = { critical: [], batch: [] };
  let n = 0;
  const note = (who: 'critical' | 'batch', id: number, admission: Admission) => {
    if (who === 'critical') outcomes.push(admission.admitted ? `a${id}` : `r${id}:${(admission.error as { limit?: string }).limit}`);
    if (admission.admitted) held[who].push(admission);
  };
  for (const op of ops) {
    if (op.who === 'clock') clock.advance(op.ms);
    else if (op.op === 'arrive') {
      const id = op.who === 'critical' ? n++ : -1;
      const result = throttle.admitOrWait({ engine: 'mysql', kind: 'statement', serviceClass: op.who, principal: `spiffe://t/${op.who}` });
      if (result instanceof Promise) void result.then((admission) => note(op.who, id, admission));
      else note(op.who, id, result);
    } else held[op.who].shift()?.release();
    await settled();
  }
  return outcomes;
}

describe('ClassThrottle: classes apart', () => {
  it('a batch flood changes nothing for critical callers (property)', async () => {
    const critical = fc.oneof(
      fc.record({ who: fc.constant('critical' as const), op: fc.constantFrom('arrive' as const, 'release' as const) }),
      fc.record({ who: fc.constant('clock' as const), ms: fc.integer({ min: 1, max: 400 }) }),
    );
    const batch = fc.record({ who: fc.constant('batch' as const), op: fc.constantFrom('arrive' as const, 'arrive' as const, 'release' as const) });
    await fc.assert(
      fc.asyncProperty(fc.array(critical, { minLength: 1, maxLength: 40 }), fc.array(fc.array(batch, { maxLength: 6 }), { maxLength: 40 }), async (own, floods) => {
        const mixed: Op[] = own.flatMap((op, i) => [...(floods[i] ?? []), op]);
        assert.deepEqual(await criticalOutcomes(mixed), await criticalOutcomes(own));
      }),
      { numRuns: 150 },
    );
  });
});
