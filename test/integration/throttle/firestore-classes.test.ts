/**
 * Service classes on the Firestore port: the Firestore SDK through meshgate to Google's
 * emulator. A class past its burst refuses the call with gRPC RESOURCE_EXHAUSTED naming the
 * class, audited; another class's caller is untouched.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { FIRESTORE_POLICY, FIRESTORE_SKIP, FIRESTORE_WORKLOADS, startFirestoreFixture, type FirestoreFixture, type GrpcFailure } from '../../helpers/firestore.ts';

const RESOURCE_EXHAUSTED = 8;
// The reporter runs as batch; everyone else in the default class.
const POLICY = FIRESTORE_POLICY.replace('    - id: reporter-read\n', '    - id: reporter-read\n      serviceClass: batch\n');

describe('service classes on the Firestore port (official emulator)', { skip: FIRESTORE_SKIP, timeout: 120_000 }, () => {
  let fx: FirestoreFixture;
  before(async () => {
    assert.notEqual(POLICY, FIRESTORE_POLICY);
    fx = await startFirestoreFixture({
      name: `fsthrottle${randomBytes(3).toString('hex')}`,
      project: 'mg-it-throttle',
      workloads: FIRESTORE_WORKLOADS,
      policy: POLICY,
      config: (config) => {
        config.throttle = { classes: { default: { rate: { perSecond: 10_000 } }, batch: { rate: { perSecond: 1 / 3600, burst: 2 } } } };
      },
    });
    await fx.reseed({ 'orders/o-1': { total: 1 } });
  });
  after(async () => fx?.stop());

  it('refuses a batch caller past its burst with RESOURCE_EXHAUSTED, while the default class keeps going', async () => {
    const reporter = fx.client('reporter');
    const orders = fx.client('orders');
    await reporter.doc('orders/o-1').get();
    await reporter.doc('orders/o-1').get();
    await assert.rejects(reporter.doc('orders/o-1').get(), (error: GrpcFailure) => error.code === RESOURCE_EXHAUSTED && /MG_THROTTLED/.test(error.message) && /batch/.test(error.message));
    for (let i = 0; i < 3; i++) await orders.doc('orders/o-1').get();
    const refused = (await fx.harness.readAudit()).filter((e) => e['type'] === 'rpc' && (e['error'] as { code?: string } | null)?.code === 'MG_THROTTLED');
    assert.equal(refused.length, 1);
    assert.equal((refused[0]!['identity'] as { spiffeId: string }).spiffeId, FIRESTORE_WORKLOADS.reporter);
  });
});

describe('the Firestore stream budget (official emulator)', { skip: FIRESTORE_SKIP, timeout: 120_000 }, () => {
  let fx: FirestoreFixture;
  before(async () => {
    fx = await startFirestoreFixture({
      name: `fsstreams${randomBytes(3).toString('hex')}`,
      project: 'mg-it-streams',
      workloads: FIRESTORE_WORKLOADS,
      policy: POLICY,
      config: (config) => {
        // Two concurrent calls in all; one of them only the default class may take.
        config.throttle = { classes: { default: {}, batch: {} }, firestore: { streams: 2, reserved: { default: 1 } } };
      },
    });
    await fx.reseed({ 'orders/o-1': { total: 1 } });
  });
  after(async () => fx?.stop());

  it('a listening batch caller holds the one stream batch may use; its next call is refused, the default class still reads', async () => {
    const reporter = fx.client('reporter');
    let unsubscribe: (() => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        unsubscribe = reporter.doc('orders/o-1').onSnapshot(() => resolve(), reject);
      });
      await assert.rejects(
        reporter.doc('orders/o-1').get(),
        (error: GrpcFailure) => error.code === RESOURCE_EXHAUSTED && /MG_UPSTREAM_BUSY/.test(error.message) && /Firestore stream/.test(error.message),
      );
      await fx.client('orders').doc('orders/o-1').get();
    } finally {
      unsubscribe?.();
    }
  });
});

describe('a service class that waits, on the Firestore port (official emulator)', { skip: FIRESTORE_SKIP, timeout: 120_000 }, () => {
  let fx: FirestoreFixture;
  before(async () => {
    fx = await startFirestoreFixture({
      name: `fswait${randomBytes(3).toString('hex')}`,
      project: 'mg-it-fswait',
      workloads: FIRESTORE_WORKLOADS,
      policy: POLICY,
      config: (config) => {
        config.throttle = {
          classes: {
            // default: one call at once, then five a second; queued up to two seconds.
            default: { rate: { perSecond: 5, burst: 1 }, overLimit: { wait: { queue: 8, timeout: '2s' } } },
            // batch: one call an hour; a second waits 300 ms, then is refused.
            batch: { rate: { perSecond: 1 / 3600, burst: 1 }, overLimit: { wait: { queue: 8, timeout: '300ms' } } },
          },
        };
      },
    });
    await fx.reseed({ 'orders/o-1': { total: 1 } });
  });
  after(async () => fx?.stop());

  it('queues a call until its bucket refills instead of refusing it', async () => {
    const orders = fx.client('orders');
    await orders.doc('orders/o-1').get();
    const started = Date.now();
    for (let i = 0; i < 3; i++) assert.equal((await orders.doc('orders/o-1').get()).get('total'), 1);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 450 && elapsed < 2000, `three calls at five a second after the burst took ${elapsed} ms`);
    // Each event says how long its call waited for the class.
    const waits = (await fx.harness.readAudit())
      .filter((e) => e['type'] === 'rpc' && (e['identity'] as { spiffeId: string } | null)?.spiffeId === FIRESTORE_WORKLOADS.orders)
      .slice(-3)
      .map((e) => (e['throttleWaitMs'] as number | undefined) ?? 0);
    assert.ok(waits.length === 3 && waits.every((ms) => ms >= 100 && ms <= 400), `waits ${JSON.stringify(waits)}`);
  });

  it('refuses a call that waited past its class timeout with RESOURCE_EXHAUSTED MG_THROTTLE_TIMEOUT, audited', async () => {
    const reporter = fx.client('reporter');
    await reporter.doc('orders/o-1').get();
    const started = Date.now();
    await assert.rejects(reporter.doc('orders/o-1').get(), (error: GrpcFailure) => error.code === RESOURCE_EXHAUSTED && /MG_THROTTLE_TIMEOUT/.test(error.message));
    assert.ok(Date.now() - started >= 280, 'it waited its class timeout first');
    const timedOut = (await fx.harness.readAudit()).filter((e) => e['type'] === 'rpc' && (e['error'] as { code?: string } | null)?.code === 'MG_THROTTLE_TIMEOUT');
    assert.equal(timedOut.length, 1);
  });
});
