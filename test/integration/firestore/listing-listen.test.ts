/**
 * Listing and listening through meshgate, against Google's official emulator: ListDocuments
 * (read on a collection), ListCollectionIds (admin on a document or the database root) and
 * Listen (onSnapshot on a document or a query). Each case checks the client's outcome
 * against what the emulator itself answers, and the audit event.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DocumentSnapshot, Firestore, Query, QuerySnapshot } from '@google-cloud/firestore';
import type { RpcEvent } from '../../../src/audit/types.ts';
import {
  FIRESTORE_POLICY,
  FIRESTORE_SKIP,
  FIRESTORE_WORKLOADS,
  FS_METHOD,
  onlyRpc,
  PERMISSION_DENIED,
  RULE,
  startFirestoreFixture,
  waitForRpc,
  type FirestoreFixture,
  type GrpcFailure,
} from '../../helpers/firestore.ts';

const PROJECT = 'mg-it-listing';

function isDenied(error: GrpcFailure, what: string, rule: string | null = null): true {
  assert.equal(error.code, PERMISSION_DENIED, error.message);
  assert.match(error.message, /\[MG_POLICY_DENIED\]/);
  assert.ok(error.message.includes(what), `${error.message} should name ${what}`);
  if (rule !== null) assert.ok(error.message.includes(rule), `${error.message} should name ${rule}`);
  return true;
}

const summary = (events: readonly RpcEvent[]) => events.map((e) => [e.method.split('/')[1], e.decision, e.rule, e.paths, e.status, e.operation]);
const ids = (refs: readonly { path: string }[]) => refs.map((r) => r.path).sort();

/** Collects snapshots until `until` says enough, then unsubscribes; rejects on the error callback or after `timeoutMs`. */
function listen<T extends DocumentSnapshot | QuerySnapshot>(
  target: { onSnapshot(next: (s: T) => void, error: (e: Error) => void): () => void },
  onEach: (snapshot: T, index: number) => void,
  until: (count: number) => boolean,
  timeoutMs = 5000,
): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const seen: T[] = [];
    let unsubscribe = () => {};
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`listener timed out after ${seen.length} snapshot(s)`));
    }, timeoutMs);
    unsubscribe = target.onSnapshot(
      (snapshot) => {
        seen.push(snapshot);
        onEach(snapshot, seen.length - 1);
        if (until(seen.length)) {
          clearTimeout(timer);
          unsubscribe();
          resolve(seen);
        }
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

describe('Firestore listing and listening through meshgate (official emulator)', { skip: FIRESTORE_SKIP }, () => {
  let fx: FirestoreFixture;
  let orders: Firestore;

  before(async () => {
    fx = await startFirestoreFixture({ name: 'fslist', project: PROJECT, workloads: FIRESTORE_WORKLOADS, policy: FIRESTORE_POLICY });
    orders = fx.client('orders');
  });

  after(async () => {
    await fx?.stop();
  });

  beforeEach(async () => {
    await fx.reseed({
      'orders/o1': { total: 10 },
      'orders/o2': { total: 20 },
      'orders/o1/items/i1': { sku: 'a' },
      'orders/o1/notes/n1': { text: 'x' },
      // orders/ghost does not exist, but has a subcollection: ListDocuments (show_missing) names it.
      'orders/ghost/items/i9': { sku: 'g' },
      'users/u1': { name: 'Ada' },
      'accounts/a1': { balance: 5 },
      'analytics/daily': { visits: 7 },
      'analytics/daily/hours/h1': { visits: 1 },
    });
  });

  describe('listDocuments (ListDocuments: read on the collection)', () => {
    test('an allowed collection lists what the emulator lists, including missing parents', async () => {
      const mark = await fx.mark();
      const through = await orders.collection('orders').listDocuments();
      const direct = await fx.direct.collection('orders').listDocuments();
      assert.deepEqual(ids(through), ['orders/ghost', 'orders/o1', 'orders/o2']);
      assert.deepEqual(ids(through), ids(direct));
      const event = await onlyRpc(fx, mark, 'ListDocuments');
      assert.deepEqual(summary([event]), [['ListDocuments', 'allow', RULE.ordersRw, ['orders (collection)'], 0, 'read']]);
      assert.equal(event.documents, 3);
    });

    test('a subcollection pattern (orders/*/items/*) allows listing an order’s items', async () => {
      const mark = await fx.mark();
      assert.deepEqual(ids(await orders.collection('orders/o1/items').listDocuments()), ['orders/o1/items/i1']);
      assert.deepEqual(summary([await onlyRpc(fx, mark, 'ListDocuments')]), [['ListDocuments', 'allow', RULE.ordersRw, ['orders/o1/items (collection)'], 0, 'read']]);
    });

    test('a collection outside the policy is denied', async () => {
      const mark = await fx.mark();
      await assert.rejects(orders.collection('users').listDocuments(), (error: GrpcFailure) => isDenied(error, 'collection users'));
      const event = await onlyRpc(fx, mark, 'ListDocuments');
      assert.deepEqual(summary([event]), [['ListDocuments', 'deny', null, ['users (collection)'], PERMISSION_DENIED, 'read']]);
      assert.equal(event.documents, 0);
    });

    test('listing accounts is denied by the DENY on accounts/secret-* (it could name one)', async () => {
      const mark = await fx.mark();
      await assert.rejects(orders.collection('accounts').listDocuments(), (error: GrpcFailure) => isDenied(error, 'collection accounts', RULE.denySecrets));
      assert.deepEqual(summary([await onlyRpc(fx, mark, 'ListDocuments')]), [['ListDocuments', 'deny', RULE.denySecrets, ['accounts (collection)'], PERMISSION_DENIED, 'read']]);
    });
  });

  describe('listCollections (ListCollectionIds: admin)', () => {
    test('db.listCollections() needs admin on the database root: denied for orders (orders/* only)', async () => {
      const mark = await fx.mark();
      await assert.rejects(orders.listCollections(), (error: GrpcFailure) => isDenied(error, 'database (default)'));
      assert.deepEqual(summary([await onlyRpc(fx, mark, 'ListCollectionIds')]), [['ListCollectionIds', 'deny', null, [''], PERMISSION_DENIED, 'admin']]);
    });

    test('db.listCollections() is allowed for the auditor (`**`, admin) and matches the emulator', async () => {
      const mark = await fx.mark();
      const through = await fx.client('auditor').listCollections();
      const direct = await fx.direct.listCollections();
      assert.deepEqual(ids(through), ['accounts', 'analytics', 'orders', 'users']);
      assert.deepEqual(ids(through), ids(direct));
      const event = await onlyRpc(fx, mark, 'ListCollectionIds');
      assert.deepEqual(summary([event]), [['ListCollectionIds', 'allow', RULE.auditor, [''], 0, 'admin']]);
      assert.equal(event.identity?.spiffeId, FIRESTORE_WORKLOADS.auditor);
    });

    test('doc.listCollections() on an order: allowed by orders-admin, same as the emulator', async () => {
      const mark = await fx.mark();
      const through = await orders.doc('orders/o1').listCollections();
      assert.deepEqual(ids(through), ['orders/o1/items', 'orders/o1/notes']);
      assert.deepEqual(ids(through), ids(await fx.direct.doc('orders/o1').listCollections()));
      assert.deepEqual(summary([await onlyRpc(fx, mark, 'ListCollectionIds')]), [['ListCollectionIds', 'allow', RULE.ordersAdmin, ['orders/o1'], 0, 'admin']]);
    });

    test('doc.listCollections() outside the policy, or with read but not admin, is denied', async () => {
      const mark = await fx.mark();
      await assert.rejects(orders.doc('users/u1').listCollections(), (error: GrpcFailure) => isDenied(error, 'users/u1'));
      await assert.rejects(fx.client('analytics').doc('analytics/daily').listCollections(), (error: GrpcFailure) => isDenied(error, 'admin of document analytics/daily'));
      const events = await waitForRpc(fx, mark, 'ListCollectionIds', 2);
      assert.deepEqual(summary(events), [
        ['ListCollectionIds', 'deny', null, ['users/u1'], PERMISSION_DENIED, 'admin'],
        ['ListCollectionIds', 'deny', null, ['analytics/daily'], PERMISSION_DENIED, 'admin'],
      ]);
    });
  });

  describe('listen (onSnapshot)', () => {
    test('a document listener gets the document, then the change made on the emulator', async () => {
      const mark = await fx.mark();
      const snapshots = await listen<DocumentSnapshot>(
        orders.doc('orders/o1'),
        (_, index) => {
          if (index === 0) void fx.direct.doc('orders/o1').update({ total: 11 });
        },
        (count) => count === 2,
      );
      assert.deepEqual(
        snapshots.map((s) => s.data()),
        [{ total: 10 }, { total: 11 }],
      );
      const event = await onlyRpc(fx, mark, 'Listen');
      assert.deepEqual(summary([event]), [['Listen', 'allow', RULE.ordersRw, ['orders/o1'], 0, 'read']]);
      assert.equal(event.documents, 2);
    });

    test('a query listener gets the matching documents, then a new one', async () => {
      const mark = await fx.mark();
      const query: Query = orders.collection('orders').where('total', '>=', 10);
      const snapshots = await listen<QuerySnapshot>(
        query,
        (_, index) => {
          if (index === 0) void fx.direct.doc('orders/o3').set({ total: 30 });
        },
        (count) => count === 2,
      );
      assert.deepEqual(
        snapshots.map((s) => s.docs.map((d) => d.ref.path).sort()),
        [
          ['orders/o1', 'orders/o2'],
          ['orders/o1', 'orders/o2', 'orders/o3'],
        ],
      );
      const event = await onlyRpc(fx, mark, 'Listen');
      assert.deepEqual(summary([event]), [['Listen', 'allow', RULE.ordersRw, ['orders (collection)'], 0, 'read']]);
      assert.ok(event.documents >= 3, `documents ${event.documents}`);
    });

    test('a listener on a denied document never gets data, and every attempt is audited as denied', async () => {
      const mark = await fx.mark();
      let delivered = 0;
      const unsubscribe = orders.doc('users/u1').onSnapshot(
        () => (delivered += 1),
        () => {},
      );
      const events = await waitForRpc(fx, mark, 'Listen', 1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      unsubscribe();
      assert.equal(delivered, 0);
      assert.ok(events.length >= 1);
      for (const event of events) assert.deepEqual(summary([event]), [['Listen', 'deny', null, ['users/u1'], PERMISSION_DENIED, 'read']]);
    });

    test('a listener on a denied query never gets data either', async () => {
      const mark = await fx.mark();
      let delivered = 0;
      const unsubscribe = orders.collection('users').onSnapshot(
        () => (delivered += 1),
        () => {},
      );
      const events = await waitForRpc(fx, mark, 'Listen', 1);
      unsubscribe();
      assert.equal(delivered, 0);
      assert.deepEqual(summary(events.slice(0, 1)), [['Listen', 'deny', null, ['users (collection)'], PERMISSION_DENIED, 'read']]);
    });

    test(
      'a listener on a denied document gets its error callback with PERMISSION_DENIED',
      async () => {
        const mark = await fx.mark();
        const error = await listen<DocumentSnapshot>(orders.doc('users/u1'), () => {}, () => true, 2500).then(
          () => null,
          (e: Error & { code?: number }) => e,
        );
        assert.ok(error !== null, 'the snapshot callback got data');
        assert.match(error.message, /PERMISSION_DENIED|Error 7:/);
        assert.match(error.message, /MG_POLICY_DENIED.*users\/u1/);
        const events = (await fx.rpcSince(mark)).filter((e) => e.method === FS_METHOD('Listen'));
        assert.equal(events.length, 1, `the SDK retried the denied listen ${events.length} times`);
      },
    );
  });
});
