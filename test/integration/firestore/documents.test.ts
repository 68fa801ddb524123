/**
 * Firestore through meshgate, document by document, against Google's official emulator:
 * get, set, update, delete, queries, aggregations, subcollections, collection groups, DENY
 * rules beating ALLOWs, read vs write, another project or database, the W3C trace id, and
 * the firebase-admin SDK. Every case checks three things: what the client got, what the
 * emulator really holds afterwards (read directly, as its owner), and the audit event.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { Query, type DocumentReference, type Firestore } from '@google-cloud/firestore';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getFirestore } from 'firebase-admin/firestore';
import type { RpcEvent } from '../../../src/audit/types.ts';
import { meshgateClientSettings } from '../../../src/demo/firestore-sdk.ts';
import {
  FIRESTORE_POLICY,
  FIRESTORE_SKIP,
  FIRESTORE_WORKLOADS,
  FS_METHOD,
  onlyRpc,
  PERMISSION_DENIED,
  RULE,
  startFirestoreFixture,
  type FirestoreFixture,
  type GrpcFailure,
} from '../../helpers/firestore.ts';

const PROJECT = 'mg-it-documents';

/** Rejects with PERMISSION_DENIED from meshgate, naming `what` (and the rule, when one denied). */
async function denied(promise: Promise<unknown>, what: string, rule: string | null = null): Promise<void> {
  await assert.rejects(promise, (error: GrpcFailure) => {
    assert.equal(error.code, PERMISSION_DENIED, error.message);
    assert.match(error.message, /\[MG_POLICY_DENIED\]/);
    assert.ok(error.message.includes(what), `${error.message} should name ${what}`);
    if (rule !== null) assert.ok(error.message.includes(rule), `${error.message} should name rule ${rule}`);
    return true;
  });
}

interface Expected {
  readonly method: string;
  readonly decision: 'allow' | 'deny';
  readonly rule: string | null;
  readonly paths: readonly string[];
  readonly status: number;
  readonly documents: number;
  readonly operation?: string | null;
  readonly workload?: keyof typeof FIRESTORE_WORKLOADS;
}

function assertEvent(event: RpcEvent, expected: Expected): void {
  const { workload = 'orders', ...rest } = expected;
  assert.deepEqual(
    { method: event.method, decision: event.decision, rule: event.rule, paths: event.paths, status: event.status, documents: event.documents, ...(rest.operation === undefined ? {} : { operation: event.operation }) },
    { ...rest, method: FS_METHOD(rest.method), paths: [...rest.paths] },
  );
  assert.equal(event.identity?.spiffeId, FIRESTORE_WORKLOADS[workload]);
}

/**
 * A query for every collection `collectionId` at any depth under `doc` (RunQuery with the
 * document as parent and allDescendants). Firestore serves it; the Node SDK only builds it
 * internally, so it is made here from the SDK's own query options.
 */
function groupUnder(doc: DocumentReference, collectionId: string): Query {
  const options = (doc.collection(collectionId) as unknown as { _queryOptions: { with(settings: object): unknown } })._queryOptions;
  const QueryCtor = Query as unknown as new (firestore: Firestore, options: unknown) => Query;
  return new QueryCtor(doc.firestore, options.with({ allDescendants: true }));
}

const paths = (docs: readonly { ref: { path: string } }[]) => docs.map((d) => d.ref.path).sort();

describe('Firestore documents through meshgate (official emulator)', { skip: FIRESTORE_SKIP }, () => {
  let fx: FirestoreFixture;
  let orders: Firestore;

  before(async () => {
    fx = await startFirestoreFixture({ name: `fsdocs${randomBytes(3).toString('hex')}`, project: PROJECT, workloads: FIRESTORE_WORKLOADS, policy: FIRESTORE_POLICY });
    orders = fx.client('orders');
  });

  after(async () => {
    await fx?.stop();
  });

  beforeEach(async () => {
    await fx.reseed({
      'orders/o1': { status: 'open', total: 10 },
      'orders/o2': { status: 'shipped', total: 25 },
      'orders/o3': { status: 'open', total: 40 },
      'orders/o1/items/i1': { sku: 'a', qty: 1 },
      'orders/o1/items/i2': { sku: 'b', qty: 2 },
      'orders/o2/items/i3': { sku: 'c', qty: 3 },
      'orders/o1/notes/n1': { text: 'call first' },
      'orders/o1/items/i1/parts/p1': { part: 'screw' },
      'orders/o1/items/i1/items/deep': { sku: 'nested' },
      'items/loose': { sku: 'root-level' },
      'users/u1': { name: 'Ada' },
      'accounts/a1': { balance: 5 },
      'accounts/secret-1': { balance: 1_000_000 },
      'analytics/daily': { visits: 7 },
      'analytics/2024/months/01': { visits: 99 },
    });
  });

  const onEmulator = async (path: string) => (await fx.direct.doc(path).get()).data();

  describe('get, set, update, delete', () => {
    test('get of an allowed document returns it; the event counts one document', async () => {
      const mark = await fx.mark();
      const snapshot = await orders.doc('orders/o1').get();
      assert.deepEqual(snapshot.data(), { status: 'open', total: 10 });
      assertEvent(await onlyRpc(fx, mark, 'BatchGetDocuments'), { method: 'BatchGetDocuments', decision: 'allow', rule: RULE.ordersRw, paths: ['orders/o1'], status: 0, documents: 1, operation: 'read' });
    });

    test('get of a missing allowed document: not found, zero documents', async () => {
      const mark = await fx.mark();
      assert.equal((await orders.doc('orders/nope').get()).exists, false);
      assertEvent(await onlyRpc(fx, mark, 'BatchGetDocuments'), { method: 'BatchGetDocuments', decision: 'allow', rule: RULE.ordersRw, paths: ['orders/nope'], status: 0, documents: 0 });
    });

    test('get outside the policy is PERMISSION_DENIED naming the path; no rule matched', async () => {
      const mark = await fx.mark();
      await denied(orders.doc('users/u1').get(), 'users/u1');
      assertEvent(await onlyRpc(fx, mark, 'BatchGetDocuments'), { method: 'BatchGetDocuments', decision: 'deny', rule: null, paths: ['users/u1'], status: PERMISSION_DENIED, documents: 0, operation: 'read' });
    });

    test('a caller no rule names is denied everything', async () => {
      const mark = await fx.mark();
      await denied(fx.client('stranger').doc('orders/o1').get(), 'orders/o1');
      assertEvent(await onlyRpc(fx, mark, 'BatchGetDocuments'), { method: 'BatchGetDocuments', decision: 'deny', rule: null, paths: ['orders/o1'], status: PERMISSION_DENIED, documents: 0, workload: 'stranger' });
    });

    test('set: allowed lands on the emulator, denied does not', async () => {
      let mark = await fx.mark();
      await orders.doc('orders/o4').set({ status: 'new', total: 1 });
      assert.deepEqual(await onEmulator('orders/o4'), { status: 'new', total: 1 });
      assertEvent(await onlyRpc(fx, mark, 'Commit'), { method: 'Commit', decision: 'allow', rule: RULE.ordersRw, paths: ['orders/o4'], status: 0, documents: 1, operation: 'write' });

      mark = await fx.mark();
      await denied(orders.doc('users/u2').set({ name: 'Eve' }), 'users/u2');
      assert.equal(await onEmulator('users/u2'), undefined);
      assertEvent(await onlyRpc(fx, mark, 'Commit'), { method: 'Commit', decision: 'deny', rule: null, paths: ['users/u2'], status: PERMISSION_DENIED, documents: 0, operation: 'write' });
    });

    test('update: allowed changes the document, denied leaves it as it was', async () => {
      let mark = await fx.mark();
      await orders.doc('orders/o1').update({ status: 'paid' });
      assert.deepEqual(await onEmulator('orders/o1'), { status: 'paid', total: 10 });
      assertEvent(await onlyRpc(fx, mark, 'Commit'), { method: 'Commit', decision: 'allow', rule: RULE.ordersRw, paths: ['orders/o1'], status: 0, documents: 1 });

      mark = await fx.mark();
      await denied(orders.doc('users/u1').update({ name: 'Mallory' }), 'users/u1');
      assert.deepEqual(await onEmulator('users/u1'), { name: 'Ada' });
      assertEvent(await onlyRpc(fx, mark, 'Commit'), { method: 'Commit', decision: 'deny', rule: null, paths: ['users/u1'], status: PERMISSION_DENIED, documents: 0 });
    });

    test('delete: allowed removes the document, denied leaves it', async () => {
      let mark = await fx.mark();
      await orders.doc('orders/o2').delete();
      assert.equal(await onEmulator('orders/o2'), undefined);
      assertEvent(await onlyRpc(fx, mark, 'Commit'), { method: 'Commit', decision: 'allow', rule: RULE.ordersRw, paths: ['orders/o2'], status: 0, documents: 1, operation: 'write' });

      mark = await fx.mark();
      await denied(orders.doc('users/u1').delete(), 'users/u1');
      assert.deepEqual(await onEmulator('users/u1'), { name: 'Ada' });
      assertEvent(await onlyRpc(fx, mark, 'Commit'), { method: 'Commit', decision: 'deny', rule: null, paths: ['users/u1'], status: PERMISSION_DENIED, documents: 0 });
    });

    test('getAll with one denied document refuses the whole read', async () => {
      const mark = await fx.mark();
      await denied(orders.getAll(orders.doc('orders/o1'), orders.doc('users/u1')), 'users/u1');
      assertEvent(await onlyRpc(fx, mark, 'BatchGetDocuments'), { method: 'BatchGetDocuments', decision: 'deny', rule: null, paths: ['orders/o1', 'users/u1'], status: PERMISSION_DENIED, documents: 0 });
    });
  });

  describe('queries', () => {
    test('where + orderBy + limit on an allowed collection: the same answer as the emulator gives directly', async () => {
      const mark = await fx.mark();
      const query = (db: Firestore) => db.collection('orders').where('status', '==', 'open').orderBy('total', 'desc').limit(1);
      const through = await query(orders).get();
      const direct = await query(fx.direct).get();
      assert.deepEqual(paths(through.docs), ['orders/o3']);
      assert.deepEqual(paths(through.docs), paths(direct.docs));
      assertEvent(await onlyRpc(fx, mark, 'RunQuery'), { method: 'RunQuery', decision: 'allow', rule: RULE.ordersRw, paths: ['orders (collection)'], status: 0, documents: 1, operation: 'read' });
    });

    test('a query on a collection outside the policy is denied', async () => {
      const mark = await fx.mark();
      await denied(orders.collection('users').where('name', '==', 'Ada').get(), 'collection users');
      assertEvent(await onlyRpc(fx, mark, 'RunQuery'), { method: 'RunQuery', decision: 'deny', rule: null, paths: ['users (collection)'], status: PERMISSION_DENIED, documents: 0 });
    });

    test('count(): allowed on orders (RunAggregationQuery), denied on users', async () => {
      let mark = await fx.mark();
      const count = await orders.collection('orders').count().get();
      assert.equal(count.data().count, 3);
      assertEvent(await onlyRpc(fx, mark, 'RunAggregationQuery'), { method: 'RunAggregationQuery', decision: 'allow', rule: RULE.ordersRw, paths: ['orders (collection)'], status: 0, documents: 0 });

      mark = await fx.mark();
      await denied(orders.collection('users').count().get(), 'collection users');
      assertEvent(await onlyRpc(fx, mark, 'RunAggregationQuery'), { method: 'RunAggregationQuery', decision: 'deny', rule: null, paths: ['users (collection)'], status: PERMISSION_DENIED, documents: 0 });
    });
  });

  describe('subcollections (orders/*/items/*)', () => {
    test('items of an order: get, set and query are allowed', async () => {
      const mark = await fx.mark();
      assert.deepEqual((await orders.doc('orders/o1/items/i1').get()).data(), { sku: 'a', qty: 1 });
      await orders.doc('orders/o1/items/i9').set({ sku: 'z', qty: 9 });
      assert.deepEqual(await onEmulator('orders/o1/items/i9'), { sku: 'z', qty: 9 });
      const items = await orders.collection('orders/o1/items').orderBy('qty').get();
      assert.deepEqual(paths(items.docs), ['orders/o1/items/i1', 'orders/o1/items/i2', 'orders/o1/items/i9']);
      const events = await fx.rpcSince(mark, 3);
      assert.deepEqual(
        events.map((e) => [e.method.split('/')[1], e.decision, e.rule, e.paths, e.documents]),
        [
          ['BatchGetDocuments', 'allow', RULE.ordersRw, ['orders/o1/items/i1'], 1],
          ['Commit', 'allow', RULE.ordersRw, ['orders/o1/items/i9'], 1],
          ['RunQuery', 'allow', RULE.ordersRw, ['orders/o1/items (collection)'], 3],
        ],
      );
    });

    test('another subcollection of an order (notes) is denied: read and write', async () => {
      const mark = await fx.mark();
      await denied(orders.doc('orders/o1/notes/n1').get(), 'orders/o1/notes/n1');
      await denied(orders.doc('orders/o1/notes/n2').set({ text: 'x' }), 'orders/o1/notes/n2');
      await denied(orders.doc('orders/o1/items/i1/parts/p1').get(), 'orders/o1/items/i1/parts/p1');
      assert.equal(await onEmulator('orders/o1/notes/n2'), undefined);
      const events = await fx.rpcSince(mark);
      assert.deepEqual(
        events.map((e) => [e.method.split('/')[1], e.decision, e.rule, e.paths, e.status]),
        [
          ['BatchGetDocuments', 'deny', null, ['orders/o1/notes/n1'], PERMISSION_DENIED],
          ['Commit', 'deny', null, ['orders/o1/notes/n2'], PERMISSION_DENIED],
          ['BatchGetDocuments', 'deny', null, ['orders/o1/items/i1/parts/p1'], PERMISSION_DENIED],
        ],
      );
    });
  });

  describe('collection groups: allowed only when the patterns cover every such collection', () => {
    test('`**` (auditor): collectionGroup(items) at the root is allowed and finds every items collection', async () => {
      const auditor = fx.client('auditor');
      const mark = await fx.mark();
      const through = await auditor.collectionGroup('items').get();
      const direct = await fx.direct.collectionGroup('items').get();
      assert.deepEqual(paths(through.docs), ['items/loose', 'orders/o1/items/i1', 'orders/o1/items/i1/items/deep', 'orders/o1/items/i2', 'orders/o2/items/i3']);
      assert.deepEqual(paths(through.docs), paths(direct.docs));
      assertEvent(await onlyRpc(fx, mark, 'RunQuery'), { method: 'RunQuery', decision: 'allow', rule: RULE.auditor, paths: ['**/items (collection-group)'], status: 0, documents: 5, operation: 'read', workload: 'auditor' });
    });

    test('`orders/**` (reporter): collectionGroup(items) at the root is denied (items/loose is not under orders)', async () => {
      const mark = await fx.mark();
      await denied(fx.client('reporter').collectionGroup('items').get(), 'collection-group **/items');
      assertEvent(await onlyRpc(fx, mark, 'RunQuery'), { method: 'RunQuery', decision: 'deny', rule: null, paths: ['**/items (collection-group)'], status: PERMISSION_DENIED, documents: 0, workload: 'reporter' });
    });

    test('`orders/*/items/*` (orders): collectionGroup(items) at the root is denied', async () => {
      const mark = await fx.mark();
      await denied(orders.collectionGroup('items').get(), 'collection-group **/items');
      assertEvent(await onlyRpc(fx, mark, 'RunQuery'), { method: 'RunQuery', decision: 'deny', rule: null, paths: ['**/items (collection-group)'], status: PERMISSION_DENIED, documents: 0 });
    });

    test('`orders/**` (reporter): the items group under orders/o1 is allowed and returns exactly what is under it', async () => {
      const mark = await fx.mark();
      const through = await groupUnder(fx.client('reporter').doc('orders/o1'), 'items').get();
      const direct = await groupUnder(fx.direct.doc('orders/o1'), 'items').get();
      assert.deepEqual(paths(through.docs), ['orders/o1/items/i1', 'orders/o1/items/i1/items/deep', 'orders/o1/items/i2']);
      assert.deepEqual(paths(through.docs), paths(direct.docs));
      assertEvent(await onlyRpc(fx, mark, 'RunQuery'), { method: 'RunQuery', decision: 'allow', rule: RULE.reporter, paths: ['orders/o1/**/items (collection-group)'], status: 0, documents: 3, workload: 'reporter' });
    });

    test('`orders/*/items/*` (orders): the items group under orders/o1 is denied (it reaches orders/o1/items/i1/items/…)', async () => {
      const mark = await fx.mark();
      await denied(groupUnder(orders.doc('orders/o1'), 'items').get(), 'orders/o1/**/items');
      assertEvent(await onlyRpc(fx, mark, 'RunQuery'), { method: 'RunQuery', decision: 'deny', rule: null, paths: ['orders/o1/**/items (collection-group)'], status: PERMISSION_DENIED, documents: 0 });
    });
  });

  describe('DENY rules beat ALLOW rules', () => {
    test('namespace staging: allowed by orders-rw, denied by fs-deny/staging, for reads and writes', async () => {
      const staging = fx.client('staging');
      const mark = await fx.mark();
      await denied(staging.doc('orders/o1').get(), 'orders/o1', RULE.denyStaging);
      await denied(staging.doc('orders/o9').set({ status: 'sneaky' }), 'orders/o9', RULE.denyStaging);
      assert.equal(await onEmulator('orders/o9'), undefined);
      const events = await fx.rpcSince(mark);
      assert.equal(events.length, 2);
      assertEvent(events[0]!, { method: 'BatchGetDocuments', decision: 'deny', rule: RULE.denyStaging, paths: ['orders/o1'], status: PERMISSION_DENIED, documents: 0, workload: 'staging' });
      assertEvent(events[1]!, { method: 'Commit', decision: 'deny', rule: RULE.denyStaging, paths: ['orders/o9'], status: PERMISSION_DENIED, documents: 0, workload: 'staging' });
    });

    test('accounts/secret-*: denied inside an allowed collection; other accounts stay allowed', async () => {
      const mark = await fx.mark();
      assert.deepEqual((await orders.doc('accounts/a1').get()).data(), { balance: 5 });
      await denied(orders.doc('accounts/secret-1').get(), 'accounts/secret-1', RULE.denySecrets);
      await denied(orders.doc('accounts/secret-2').set({ balance: 1 }), 'accounts/secret-2', RULE.denySecrets);
      assert.equal(await onEmulator('accounts/secret-2'), undefined);
      const events = await fx.rpcSince(mark);
      assert.equal(events.length, 3);
      assertEvent(events[0]!, { method: 'BatchGetDocuments', decision: 'allow', rule: RULE.ordersRw, paths: ['accounts/a1'], status: 0, documents: 1 });
      assertEvent(events[1]!, { method: 'BatchGetDocuments', decision: 'deny', rule: RULE.denySecrets, paths: ['accounts/secret-1'], status: PERMISSION_DENIED, documents: 0 });
      assertEvent(events[2]!, { method: 'Commit', decision: 'deny', rule: RULE.denySecrets, paths: ['accounts/secret-2'], status: PERMISSION_DENIED, documents: 0 });
    });

    test('a query over accounts is denied: it could return a secret-* document', async () => {
      const mark = await fx.mark();
      await denied(orders.collection('accounts').get(), 'collection accounts', RULE.denySecrets);
      assertEvent(await onlyRpc(fx, mark, 'RunQuery'), { method: 'RunQuery', decision: 'deny', rule: RULE.denySecrets, paths: ['accounts (collection)'], status: PERMISSION_DENIED, documents: 0 });
    });
  });

  describe('read vs write (analytics: read on analytics/**)', () => {
    test('get and query at any depth are allowed', async () => {
      const analytics = fx.client('analytics');
      const mark = await fx.mark();
      assert.deepEqual((await analytics.doc('analytics/daily').get()).data(), { visits: 7 });
      assert.deepEqual((await analytics.doc('analytics/2024/months/01').get()).data(), { visits: 99 });
      const query = await analytics.collection('analytics').where('visits', '>', 1).get();
      assert.deepEqual(paths(query.docs), ['analytics/daily']);
      const events = await fx.rpcSince(mark, 3);
      assert.deepEqual(
        events.map((e) => [e.method.split('/')[1], e.decision, e.rule, e.paths, e.documents, e.operation]),
        [
          ['BatchGetDocuments', 'allow', RULE.analytics, ['analytics/daily'], 1, 'read'],
          ['BatchGetDocuments', 'allow', RULE.analytics, ['analytics/2024/months/01'], 1, 'read'],
          ['RunQuery', 'allow', RULE.analytics, ['analytics (collection)'], 1, 'read'],
        ],
      );
    });

    test('set, update and delete are denied and change nothing', async () => {
      const analytics = fx.client('analytics');
      const mark = await fx.mark();
      await denied(analytics.doc('analytics/daily').set({ visits: 0 }), 'write of document analytics/daily');
      await denied(analytics.doc('analytics/daily').update({ visits: 0 }), 'analytics/daily');
      await denied(analytics.doc('analytics/2024/months/01').delete(), 'analytics/2024/months/01');
      assert.deepEqual(await onEmulator('analytics/daily'), { visits: 7 });
      assert.deepEqual(await onEmulator('analytics/2024/months/01'), { visits: 99 });
      const events = await fx.rpcSince(mark);
      assert.deepEqual(
        events.map((e) => [e.method.split('/')[1], e.decision, e.rule, e.status, e.operation]),
        [
          ['Commit', 'deny', null, PERMISSION_DENIED, 'write'],
          ['Commit', 'deny', null, PERMISSION_DENIED, 'write'],
          ['Commit', 'deny', null, PERMISSION_DENIED, 'write'],
        ],
      );
    });
  });

  describe('only the configured project and the databases policy names', () => {
    test('another project is PERMISSION_DENIED, for reads and writes, and nothing reaches it', async () => {
      const other = fx.client('orders', { projectId: `${PROJECT}-other` });
      const mark = await fx.mark();
      await denied(other.doc('orders/o1').get(), `not '${PROJECT}-other'`);
      await denied(other.doc('orders/o5').set({ status: 'elsewhere' }), `meshgate serves Firestore project '${PROJECT}'`);
      assert.equal((await fx.directFor(`${PROJECT}-other`).doc('orders/o5').get()).exists, false);
      assert.equal(await onEmulator('orders/o5'), undefined);
      const events = await fx.rpcSince(mark);
      assert.equal(events.length, 2);
      for (const [event, method] of [[events[0]!, 'BatchGetDocuments'], [events[1]!, 'Commit']] as const) {
        assertEvent(event, { method, decision: 'deny', rule: null, paths: [], status: PERMISSION_DENIED, documents: 0 });
      }
    });

    test('a named database the policy does not list is denied', async () => {
      const archive = fx.client('orders', { databaseId: 'archive' });
      const mark = await fx.mark();
      await denied(archive.doc('orders/o1').get(), 'orders/o1');
      const event = await onlyRpc(fx, mark, 'BatchGetDocuments');
      assertEvent(event, { method: 'BatchGetDocuments', decision: 'deny', rule: null, paths: ['orders/o1'], status: PERMISSION_DENIED, documents: 0 });
      assert.match(event.reason, /in database archive/);
    });
  });

  test('traceparent metadata: the audit event carries the caller’s trace id, allowed or denied', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const traced = fx.client('orders', { customHeaders: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
    const mark = await fx.mark();
    await traced.doc('orders/o1').get();
    await denied(traced.doc('users/u1').get(), 'users/u1');
    const events = await fx.rpcSince(mark);
    assert.deepEqual(
      events.map((e) => [e.decision, e.traceId]),
      [
        ['allow', traceId],
        ['deny', traceId],
      ],
    );
    // Without the header each call gets its own fresh id.
    const plain = await fx.mark();
    await orders.doc('orders/o1').get();
    const [untraced] = await fx.rpcSince(plain);
    assert.match(untraced!.traceId, /^[0-9a-f]{32}$/);
    assert.notEqual(untraced!.traceId, traceId);
  });

  describe('firebase-admin', () => {
    let app: App;
    let admin: ReturnType<typeof getFirestore>;

    before(() => {
      // firebase-admin brings its own @google-cloud/firestore and google-gax: credentials
      // must come from that grpc, or the SDK's instanceof checks fail.
      const fromHere = createRequire(import.meta.url);
      const sdk = createRequire(fromHere.resolve('firebase-admin/firestore')).resolve('@google-cloud/firestore');
      const grpc = (createRequire(sdk)('google-gax') as { grpc: typeof import('@grpc/grpc-js') }).grpc;
      const ssl = fx.harness.ssl('orders');
      app = initializeApp({ projectId: PROJECT }, `meshgate-${process.pid}`);
      admin = getFirestore(app);
      admin.settings(meshgateClientSettings(grpc, { host: '127.0.0.1', port: fx.port }, ssl) as never);
    });

    after(async () => {
      if (app !== undefined) await deleteApp(app);
    });

    test('get of an allowed document works; a set outside the policy is denied and not written', async () => {
      const mark = await fx.mark();
      assert.deepEqual((await admin.doc('orders/o1').get()).data(), { status: 'open', total: 10 });
      await admin.doc('orders/o1').update({ status: 'admin-sdk' });
      assert.deepEqual(await onEmulator('orders/o1'), { status: 'admin-sdk', total: 10 });
      await denied(admin.doc('users/u3').set({ name: 'via admin' }), 'users/u3');
      assert.equal(await onEmulator('users/u3'), undefined);
      const events = await fx.rpcSince(mark);
      assert.equal(events.length, 3);
      assertEvent(events[0]!, { method: 'BatchGetDocuments', decision: 'allow', rule: RULE.ordersRw, paths: ['orders/o1'], status: 0, documents: 1 });
      assertEvent(events[1]!, { method: 'Commit', decision: 'allow', rule: RULE.ordersRw, paths: ['orders/o1'], status: 0, documents: 1 });
      assertEvent(events[2]!, { method: 'Commit', decision: 'deny', rule: null, paths: ['users/u3'], status: PERMISSION_DENIED, documents: 0 });
    });
  });
});
