/**
 * ClassThrottle with SharedRates (the real Redis): two replicas' throttles hold one class rate
 * and one per-identity rate between them, refusals name the limit as locally, and concurrency
 * stays each replica's own.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ClassThrottle, isThrottledError, SharedRates, sharedRatesFor, throttleSettings, type AdmissionRequest } from '../../../src/throttle/index.ts';
import { throttleSection } from '../../../src/config/throttle-schema.ts';
import { settingsOf } from '../../unit/throttle/settings-fixture.ts';
import { dropKeys, REDIS_URL, runPrefix } from './redis-fixture.ts';
import { serviceMissing } from '../../helpers/services.ts';

const prefix = runPrefix('shclass');
const open: SharedRates[] = [];

after(async () => {
  await Promise.allSettled(open.map((rates) => rates.close()));
  await dropKeys(prefix);
});

async function replica(id: string, section: Parameters<typeof settingsOf>[0]): Promise<ClassThrottle> {
  const rates = await SharedRates.connect({ url: REDIS_URL, keyPrefix: prefix, timeoutMs: 200, replicaId: id });
  open.push(rates);
  const throttle = new ClassThrottle(settingsOf(section), { rates });
  // The class buckets' first leases are asked for at construction; a replica serves once they are in.
  await new Promise((resolve) => setTimeout(resolve, 50));
  return throttle;
}

const request = (principal: string, serviceClass = 'standard'): AdmissionRequest => ({ engine: 'mysql', kind: 'statement', serviceClass, principal });

/** Statements from both replicas in turn for `forMs`; released at once (rates only are counted). */
async function statements(throttles: ClassThrottle[], principal: (i: number) => string, forMs: number, serviceClass?: string) {
  const admitted = throttles.map(() => 0);
  const limits = new Map<string, number>();
  const end = Date.now() + forMs;
  for (let i = 0; Date.now() < end; i++) {
    throttles.forEach((throttle, t) => {
      const admission = throttle.admit(request(principal(i), serviceClass));
      if (admission.admitted) {
        admitted[t]!++;
        admission.release();
      } else if (isThrottledError(admission.error)) {
        const limit = admission.error.limit;
        limits.set(limit, (limits.get(limit) ?? 0) + 1);
      }
    });
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { admitted, total: admitted.reduce((a, b) => a + b, 0), limits };
}

describe('ClassThrottle with SharedRates on a real Redis', { timeout: 30_000, skip: await serviceMissing('redis') }, () => {
  it('a class rate of burst 60 is 60 across two replicas', async () => {
    const section = { defaultClass: 'standard', classes: { standard: { rate: { perSecond: 1, burst: 60 } } } };
    const [a, b] = [await replica('ta', section), await replica('tb', section)];
    const { admitted, total, limits } = await statements([a, b], (i) => `spiffe://t/caller-${i % 7}`, 500);
    assert.deepEqual([...limits.keys()], ['rate'], 'refused by the class rate, as a local one would');
    assert.ok(total >= 50 && total <= 63, `admitted ${total} (${admitted.join(' + ')}) from one shared burst of 60`);
    assert.equal(a.snapshot()[0]!.admitted + b.snapshot()[0]!.admitted, total);
  });

  it('a per-identity rate is shared too: one identity gets its burst once, across replicas', async () => {
    const section = { defaultClass: 'ident', classes: { ident: { rate: { perSecond: 100_000, burst: 100_000 }, perIdentity: { rate: { perSecond: 1, burst: 20 } } } } };
    const [a, b] = [await replica('tc', section), await replica('td', section)];
    const { total, limits } = await statements([a, b], () => 'spiffe://t/one', 400, 'ident');
    assert.deepEqual([...limits.keys()], ['identity-rate']);
    assert.ok(total >= 15 && total <= 23, `one identity admitted ${total} from its shared burst of 20`);
    const other = await statements([a, b], () => 'spiffe://t/two', 200, 'ident');
    assert.ok(other.total >= 15, 'another identity has a bucket of its own');
  });

  it('sharedRatesFor: the URL from { env }, the prefix and timeout from the section; none without it', async () => {
    const section = { classes: { default: { rate: { perSecond: 1, burst: 5 } } }, shared: { redis: { url: { env: 'MGT_SHCLASS_REDIS' }, keyPrefix: `${prefix}cfg:`, timeout: '200ms' } } };
    const settings = throttleSettings(throttleSection().parse(section));
    const rates = (await sharedRatesFor(settings.shared, { env: { MGT_SHCLASS_REDIS: REDIS_URL }, replicaId: 'cfg' }))!;
    open.push(rates);
    assert.equal(rates.state.mode, 'shared');
    const throttle = new ClassThrottle(settings, { rates });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const { total } = await statements([throttle], () => 'spiffe://t/x', 200, 'default');
    assert.ok(total >= 4 && total <= 6, `burst 5 from Redis: admitted ${total}`);
    assert.equal(await sharedRatesFor(throttleSettings(throttleSection().parse({ classes: { default: {} } })).shared), undefined);
    await assert.rejects(sharedRatesFor(settings.shared, { env: {} }), /MGT_SHCLASS_REDIS is not set/);
  });

  it('a reload changes the shared rate: the next lease asks Redis with the new burst', async () => {
    const small = { defaultClass: 'reload', classes: { reload: { rate: { perSecond: 1, burst: 5 } } } };
    const throttle = await replica('tr', small);
    const before = await statements([throttle], () => 'spiffe://t/r', 150, 'reload');
    assert.ok(before.total <= 6, `burst 5: admitted ${before.total}`);
    throttle.update(settingsOf({ defaultClass: 'reload', classes: { reload: { rate: { perSecond: 1000, burst: 500 } } } }));
    const after = await statements([throttle], () => 'spiffe://t/r', 150, 'reload');
    assert.ok(after.total >= 100, `the new rate and burst hold: admitted ${after.total}`);
  });
});
