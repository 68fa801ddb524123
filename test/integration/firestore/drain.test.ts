/**
 * Shutdown of the Firestore engine (SIGTERM's drain, run in process): a Listen open at
 * shutdown goes on through the grace period, then ends with UNAVAILABLE and
 * [MG_SHUTTING_DOWN] (the SDK reopens it, on a running replica), not a reset stream; its
 * event records why. Google's emulator is the upstream.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cleanup } from '../../helpers/cleanup.ts';
import {
  encodeMessage,
  FIRESTORE_POLICY,
  FIRESTORE_SKIP,
  FIRESTORE_WORKLOADS,
  gaxGrpc as grpc,
  rawFirestore,
  startFirestoreFixture,
  waitForRpc,
  type FirestoreFixture,
  type RawFirestore,
} from '../../helpers/firestore.ts';

const PROJECT = 'drain-p';
const DATABASE = `projects/${PROJECT}/databases/(default)`;
const GRACE_MS = 800;

describe('Firestore at shutdown (official emulator)', { skip: FIRESTORE_SKIP }, () => {
  let fx: FirestoreFixture;
  let raw: RawFirestore;

  before(async () => {
    fx = await startFirestoreFixture({ name: 'fsdrain', project: PROJECT, workloads: FIRESTORE_WORKLOADS, policy: FIRESTORE_POLICY });
    const ssl = fx.harness.ssl('orders');
    raw = rawFirestore(`127.0.0.1:${fx.port}`, grpc.credentials.createSsl(ssl.ca, ssl.key, ssl.cert));
    fx.onStop(() => raw.close());
  });
  after(() => cleanup(() => fx?.stop()));

  it('a Listen runs through the grace period, then ends with UNAVAILABLE and MG_SHUTTING_DOWN', async () => {
    const metadata = new grpc.Metadata();
    metadata.set('google-cloud-resource-prefix', DATABASE);
    const mark = await fx.mark();
    const body = encodeMessage('ListenRequest', { database: DATABASE, addTarget: { targetId: 1, documents: { documents: [`${DATABASE}/documents/orders/o1`] } } });
    const listening = raw.listen(body, metadata, 10_000);
    // The target is current (the emulator answered) before shutdown begins.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const began = performance.now();
    const report = await fx.harness.meshgate.shutdown({ graceMs: GRACE_MS });
    const { messages, error } = await listening;
    assert.ok(messages.length > 0, 'the Listen was served before shutdown');
    assert.ok(error !== null, 'the Listen ended before its caller cancelled it');
    assert.equal(error.code, grpc.status.UNAVAILABLE, error.details);
    assert.match(error.details, /^\[MG_SHUTTING_DOWN\] meshgate is shutting down: .*reconnect/);
    assert.ok(performance.now() - began >= GRACE_MS - 50, 'not before the grace period was over');
    assert.deepEqual(report.endedByShutdown, { firestore: 1 });
    const [event] = await waitForRpc(fx, mark, 'Listen');
    assert.equal(event!.error?.code, 'MG_SHUTTING_DOWN', JSON.stringify(event));
  });
});
