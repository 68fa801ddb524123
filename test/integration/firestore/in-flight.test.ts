/**
 * Firestore calls in flight when their caller goes away (issue 12, point 3): a call meshgate
 * forwarded has exactly one audit event, with its outcome. Between meshgate and Google's
 * emulator sits a proxy that holds the emulator's answers back, so "Firestore applied the
 * write, its answer is on the way, the caller is gone" is a state the test controls.
 *
 * A call that writes (Commit, BatchWrite, Create/Update/DeleteDocument, a Write stream) is
 * waited for after its caller left, up to firestore.timeouts.drain: the event then says what
 * Firestore answered. Past the bound it is `unknown`. A read the caller cancels is cancelled
 * upstream at once: nothing it did can have changed anything, and the event says CANCELLED.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect as http2Connect, constants, type ClientHttp2Session } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import type { RpcEvent } from '../../../src/audit/types.ts';
import { startFirestoreEmulator, type RunningEmulator } from '../../../src/dev/firestore-emulator.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { encodeMessage, FIRESTORE_POLICY, FIRESTORE_SKIP, FS_METHOD, spiffe, startFirestoreFixture, waitForRpc, type FirestoreFixture } from '../../helpers/firestore.ts';
import { startHoldingProxy, type HoldingProxy } from '../../helpers/holding-proxy.ts';

const PROJECT = 'inflight-p';
const DB = `projects/${PROJECT}/databases/(default)`;
const doc = (path: string) => `${DB}/documents/${path}`;

function frame(payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

const commitOf = (path: string) => encodeMessage('CommitRequest', { database: DB, writes: [{ update: { name: doc(path), fields: { n: { integerValue: '1' } } } }] });

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('Firestore calls whose caller goes away (official emulator)', { skip: FIRESTORE_SKIP }, () => {
  let emulator: RunningEmulator;
  let proxy: HoldingProxy;
  let fx: FirestoreFixture;
  let session: ClientHttp2Session;

  before(async () => {
    emulator = await startFirestoreEmulator({ prefer: 'official' });
    proxy = await startHoldingProxy(emulator);
    fx = await startFirestoreFixture({
      name: 'fsinflight',
      project: PROJECT,
      workloads: { orders: spiffe('ns/shop/sa/orders') },
      policy: FIRESTORE_POLICY,
      emulator,
      config: (c) => {
        c.firestore!.upstream = { emulator: `127.0.0.1:${proxy.port}` };
        c.firestore!.timeouts = { drain: '2s' };
      },
    });
    const ssl = fx.harness.ssl('orders');
    session = http2Connect(`https://127.0.0.1:${fx.port}`, { ca: ssl.ca, key: ssl.key, cert: ssl.cert, checkServerIdentity: () => undefined });
    session.on('error', () => {});
    fx.onStop(() => session.close());
    // meshgate's upstream connection is open before anything is held.
    await fx.client('orders').doc('orders/warm').get();
  });

  after(async () => {
    await cleanup(
      () => fx?.stop(),
      () => proxy?.close(),
      () => emulator?.stop(),
    );
  });

  /** Sends a whole unary call and returns its stream, which the test then cancels. */
  function send(method: string, payload: Buffer) {
    const req = session.request({ ':method': 'POST', ':path': `/${FS_METHOD(method)}`, 'content-type': 'application/grpc', te: 'trailers' });
    req.on('error', () => {});
    req.end(frame(payload));
    return req;
  }

  const exists = (path: string) => async () => (await fx.direct.doc(path).get()).exists;

  test('a Commit whose caller cancels after Firestore applied it: one event, completed, status OK', async () => {
    const mark = await fx.mark();
    proxy.hold();
    const req = send('Commit', commitOf('orders/c-completed'));
    await until('the emulator to apply the write', exists('orders/c-completed'));
    req.close(constants.NGHTTP2_CANCEL);
    await new Promise((resolve) => setTimeout(resolve, 200));
    proxy.release();
    const events = await waitForRpc(fx, mark, 'Commit', 1, 5000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const all = (await waitForRpc(fx, mark, 'Commit', 2, 0)) as RpcEvent[];
    assert.equal(all.length, 1, `exactly one event: ${JSON.stringify(all)}`);
    assert.equal(events[0]!.outcome, 'completed');
    assert.equal(events[0]!.status, 0);
    assert.deepEqual(events[0]!.paths, ['orders/c-completed']);
  });

  test('a Commit whose answer does not come within the drain bound: one event, unknown, saying why', async () => {
    const mark = await fx.mark();
    proxy.hold();
    const req = send('Commit', commitOf('orders/c-unknown'));
    await until('the emulator to apply the write', exists('orders/c-unknown'));
    req.close(constants.NGHTTP2_CANCEL);
    const left = Date.now();
    const events = await waitForRpc(fx, mark, 'Commit', 1, 6000);
    const waited = Date.now() - left;
    proxy.release();
    assert.equal(events.length, 1);
    assert.equal(events[0]!.outcome, 'unknown');
    assert.equal(events[0]!.error?.code, 'MG_OUTCOME_UNKNOWN');
    assert.match(events[0]!.error!.message, /caller cancelled.*2 s/);
    assert.ok(waited >= 1500 && waited < 5000, `recorded after the 2 s bound (${waited} ms)`);
  });

  test('a read the caller cancels is cancelled upstream at once: one event, failed, CANCELLED', async () => {
    await fx.direct.doc('orders/r1').set({ n: 1 });
    const mark = await fx.mark();
    proxy.hold();
    const req = send('GetDocument', encodeMessage('GetDocumentRequest', { name: doc('orders/r1') }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    req.close(constants.NGHTTP2_CANCEL);
    const events = await waitForRpc(fx, mark, 'GetDocument', 1, 1500);
    proxy.release();
    assert.equal(events.length, 1);
    assert.equal(events[0]!.outcome, 'failed');
    assert.equal(events[0]!.status, 1);
  });

  test('shutdown with a Commit in flight: its answer is awaited (bounded), and the event is written before the audit closes', async () => {
    proxy.hold();
    const req = send('Commit', commitOf('orders/c-shutdown'));
    const answered = new Promise<string | null>((resolve) => {
      req.on('trailers', (trailers) => resolve(String(trailers['grpc-status'])));
      req.on('response', (headers) => headers['grpc-status'] !== undefined && resolve(String(headers['grpc-status'])));
      req.on('close', () => resolve(null));
    });
    await until('the emulator to apply the write', exists('orders/c-shutdown'));
    setTimeout(() => proxy.release(), 300);
    const started = Date.now();
    await fx.harness.meshgate.close();
    assert.ok(Date.now() - started < 4000, 'shutdown bounded by the drain');
    assert.equal(await answered, '0', 'the caller got its answer');
    const events = (await readFile(fx.harness.auditFile, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as RpcEvent)
      .filter((e) => e.type === 'rpc' && e.paths.includes('orders/c-shutdown'));
    assert.equal(events.length, 1);
    assert.equal(events[0]!.outcome, 'completed');
  });
});
