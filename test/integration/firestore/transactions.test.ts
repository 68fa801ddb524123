/**
 * Firestore writes that travel together, through meshgate, against Google's official
 * emulator: transactions (a denied document refuses the whole commit), read-only
 * transactions (meshgate refuses writes in them, whatever the client library does), batches
 * (Commit) and the BulkWriter (BatchWrite, refused whole). Each case checks the client's
 * outcome, what the emulator really holds, and the audit events.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FieldValue, type Firestore } from '@google-cloud/firestore';
import type { RpcEvent } from '../../../src/audit/types.ts';
import {
  decodeMessage,
  encodeMessage,
  FIRESTORE_POLICY,
  FIRESTORE_SKIP,
  FIRESTORE_WORKLOADS,
  FS_METHOD,
  grpc,
  onlyRpc,
  PERMISSION_DENIED,
  rawFirestore,
  RULE,
  startFirestoreFixture,
  waitForRpc,
  type FirestoreFixture,
  type GrpcFailure,
  type RawFirestore,
} from '../../helpers/firestore.ts';

const PROJECT = 'mg-it-transactions';
const DATABASE = `projects/${PROJECT}/databases/(default)`;
const docName = (path: string) => `${DATABASE}/documents/${path}`;

function isDenied(error: GrpcFailure, what: string): true {
  assert.equal(error.code, PERMISSION_DENIED, error.message);
  assert.match(error.message, /\[MG_POLICY_DENIED\]/);
  assert.ok(error.message.includes(what), `${error.message} should name ${what}`);
  return true;
}

const summary = (events: readonly RpcEvent[]) => events.map((e) => [e.method.split('/')[1], e.decision, e.rule, e.paths, e.status, e.documents]);

describe('Firestore transactions, batches and bulk writes through meshgate (official emulator)', { skip: FIRESTORE_SKIP }, () => {
  let fx: FirestoreFixture;
  let orders: Firestore;

  before(async () => {
    fx = await startFirestoreFixture({ name: 'fstx', project: PROJECT, workloads: FIRESTORE_WORKLOADS, policy: FIRESTORE_POLICY });
    orders = fx.client('orders');
  });

  after(async () => {
    await fx?.stop();
  });

  beforeEach(async () => {
    await fx.reseed({ 'orders/o1': { total: 10 }, 'orders/o2': { total: 20 }, 'users/u1': { name: 'Ada' } });
  });

  const onEmulator = async (path: string) => (await fx.direct.doc(path).get()).data();

  describe('read-write transactions', () => {
    test('all allowed: the read and the commit go through and the write lands', async () => {
      const mark = await fx.mark();
      await orders.runTransaction(async (tx) => {
        const o1 = await tx.get(orders.doc('orders/o1'));
        tx.update(orders.doc('orders/o1'), { total: (o1.data()!['total'] as number) + 1 });
        tx.set(orders.doc('orders/o3'), { total: 1 });
      });
      assert.deepEqual(await onEmulator('orders/o1'), { total: 11 });
      assert.deepEqual(await onEmulator('orders/o3'), { total: 1 });
      assert.deepEqual(summary(await fx.rpcSince(mark)), [
        ['BatchGetDocuments', 'allow', RULE.ordersRw, ['orders/o1'], 0, 1],
        ['Commit', 'allow', RULE.ordersRw, ['orders/o1', 'orders/o3'], 0, 2],
      ]);
    });

    test('one denied write refuses the whole commit: nothing is written, and the transaction is rolled back', async () => {
      const mark = await fx.mark();
      await assert.rejects(
        orders.runTransaction(
          async (tx) => {
            const o1 = await tx.get(orders.doc('orders/o1'));
            tx.set(orders.doc('orders/o3'), { total: o1.data()!['total'] });
            tx.update(orders.doc('orders/o1'), { total: 0 });
            tx.set(orders.doc('users/u1'), { name: 'Mallory' });
          },
          { maxAttempts: 1 },
        ),
        (error: GrpcFailure) => isDenied(error, 'users/u1'),
      );
      assert.equal(await onEmulator('orders/o3'), undefined);
      assert.deepEqual(await onEmulator('orders/o1'), { total: 10 });
      assert.deepEqual(await onEmulator('users/u1'), { name: 'Ada' });
      const commit = await onlyRpc(fx, mark, 'Commit');
      assert.deepEqual(summary([commit]), [['Commit', 'deny', null, ['orders/o3', 'orders/o1', 'users/u1'], PERMISSION_DENIED, 0]]);
      assert.equal(commit.operation, 'write');
      // The client library rolls the refused transaction back; meshgate forwards that.
      const [rollback] = await waitForRpc(fx, mark, 'Rollback');
      assert.deepEqual(summary([rollback!]), [['Rollback', 'allow', null, [], 0, 0]]);
      // Nothing stays locked: a plain write to the document it read goes through at once.
      const started = Date.now();
      await fx.direct.doc('orders/o1').update({ total: 12 });
      assert.ok(Date.now() - started < 2000, 'the refused transaction left orders/o1 locked');
    });

    test('one denied read fails the transaction before it writes anything', async () => {
      const mark = await fx.mark();
      await assert.rejects(
        orders.runTransaction(
          async (tx) => {
            const [o1, u1] = await tx.getAll(orders.doc('orders/o1'), orders.doc('users/u1'));
            tx.set(orders.doc('orders/o3'), { copied: [o1!.data(), u1!.data()] });
          },
          { maxAttempts: 1 },
        ),
        (error: GrpcFailure) => isDenied(error, 'users/u1'),
      );
      assert.equal(await onEmulator('orders/o3'), undefined);
      const events = await fx.rpcSince(mark);
      assert.deepEqual(summary(events.filter((e) => e.method === FS_METHOD('BatchGetDocuments'))), [
        ['BatchGetDocuments', 'deny', null, ['orders/o1', 'users/u1'], PERMISSION_DENIED, 0],
      ]);
      assert.equal(events.filter((e) => e.method === FS_METHOD('Commit')).length, 0);
    });

    test('contended transactions through meshgate stay isolated (2 clients x 8 increments = 16)', async () => {
      await fx.direct.doc('orders/counter').set({ n: 0 });
      const clients = [orders, fx.client('orders')];
      await Promise.all(
        clients.map(async (db) => {
          for (let i = 0; i < 8; i += 1) {
            await db.runTransaction(async (tx) => {
              const snap = await tx.get(db.doc('orders/counter'));
              tx.update(db.doc('orders/counter'), { n: (snap.data()!['n'] as number) + 1 });
            });
          }
        }),
      );
      assert.deepEqual(await onEmulator('orders/counter'), { n: 16 });
    });
  });

  describe('read-only transactions', () => {
    test('reads in a read-only transaction are allowed; no commit is sent', async () => {
      const mark = await fx.mark();
      const totals = await orders.runTransaction(
        async (tx) => {
          const [o1, o2] = await tx.getAll(orders.doc('orders/o1'), orders.doc('orders/o2'));
          return [o1!.data()!['total'], o2!.data()!['total']];
        },
        { readOnly: true },
      );
      assert.deepEqual(totals, [10, 20]);
      const events = await fx.rpcSince(mark);
      assert.deepEqual(summary(events), [['BatchGetDocuments', 'allow', RULE.ordersRw, ['orders/o1', 'orders/o2'], 0, 2]]);
    });

    test('a write in a read-only transaction is refused (here by the client library first) and nothing is written', async () => {
      const mark = await fx.mark();
      await assert.rejects(
        orders.runTransaction(
          async (tx) => {
            await tx.get(orders.doc('orders/o1'));
            tx.set(orders.doc('orders/ro'), { total: 1 });
          },
          { readOnly: true },
        ),
        /read-only transactions cannot execute writes/,
      );
      assert.equal(await onEmulator('orders/ro'), undefined);
      const events = await fx.rpcSince(mark);
      assert.equal(events.filter((e) => e.method === FS_METHOD('Commit')).length, 0);
    });

    describe('meshgate itself refuses writes in a transaction begun read-only (raw gRPC)', () => {
      let raw: RawFirestore;

      before(() => {
        const ssl = fx.harness.ssl('orders');
        raw = rawFirestore(`127.0.0.1:${fx.port}`, grpc.credentials.createSsl(ssl.ca, ssl.key, ssl.cert));
      });

      after(() => raw?.close());

      const commitIn = (transaction: Buffer, path: string) =>
        raw.unary('Commit', encodeMessage('CommitRequest', { database: DATABASE, writes: [{ update: { name: docName(path), fields: { total: { integerValue: 1 } } } }], transaction }));

      test('BeginTransaction(read_only) then a Commit with a write: PERMISSION_DENIED, nothing written', async () => {
        const mark = await fx.mark();
        const begun = decodeMessage<{ transaction: Buffer }>('BeginTransactionResponse', await raw.unary('BeginTransaction', encodeMessage('BeginTransactionRequest', { database: DATABASE, options: { readOnly: {} } })));
        assert.ok(begun.transaction.length > 0);
        await assert.rejects(commitIn(begun.transaction, 'orders/ro1'), (error: GrpcFailure) => isDenied(error, 'begun read-only'));
        assert.equal(await onEmulator('orders/ro1'), undefined);
        await raw.unary('Rollback', encodeMessage('RollbackRequest', { database: DATABASE, transaction: begun.transaction }));
        const events = await fx.rpcSince(mark);
        // The path itself was allowed, but no rule refused the write: the caller's own
        // read-only transaction did, so the event names no rule and says why.
        assert.deepEqual(summary(events), [
          ['BeginTransaction', 'allow', null, [], 0, 0],
          ['Commit', 'deny', null, ['orders/ro1'], PERMISSION_DENIED, 0],
          ['Rollback', 'allow', null, [], 0, 0],
        ]);
        assert.match(events[1]!.reason, /begun read-only/);
      });

      test('a read-only transaction begun lazily by a read (BatchGetDocuments new_transaction) is refused writes too', async () => {
        const responses = await raw.serverStream('BatchGetDocuments', encodeMessage('BatchGetDocumentsRequest', { database: DATABASE, documents: [docName('orders/o1')], newTransaction: { readOnly: {} } }));
        const transaction = responses.map((r) => decodeMessage<{ transaction?: Buffer }>('BatchGetDocumentsResponse', r).transaction).find((t) => t !== undefined && t.length > 0);
        assert.ok(transaction !== undefined, 'the read opened a transaction');
        const mark = await fx.mark();
        await assert.rejects(commitIn(transaction, 'orders/ro2'), (error: GrpcFailure) => isDenied(error, 'begun read-only'));
        assert.equal(await onEmulator('orders/ro2'), undefined);
        assert.deepEqual(summary([await onlyRpc(fx, mark, 'Commit')]), [['Commit', 'deny', null, ['orders/ro2'], PERMISSION_DENIED, 0]]);
      });

      test('control: the same Commit in a read-write transaction goes through', async () => {
        const begun = decodeMessage<{ transaction: Buffer }>('BeginTransactionResponse', await raw.unary('BeginTransaction', encodeMessage('BeginTransactionRequest', { database: DATABASE, options: { readWrite: {} } })));
        const mark = await fx.mark();
        await commitIn(begun.transaction, 'orders/rw1');
        assert.deepEqual(await onEmulator('orders/rw1'), { total: 1 });
        assert.deepEqual(summary([await onlyRpc(fx, mark, 'Commit')]), [['Commit', 'allow', RULE.ordersRw, ['orders/rw1'], 0, 1]]);
      });
    });
  });

  describe('batches (Commit without a transaction)', () => {
    test('a WriteBatch of allowed documents is written whole', async () => {
      const mark = await fx.mark();
      const batch = orders.batch();
      batch.set(orders.doc('orders/b1'), { total: 1 });
      batch.update(orders.doc('orders/o1'), { total: FieldValue.increment(5) });
      batch.delete(orders.doc('orders/o2'));
      await batch.commit();
      assert.deepEqual(await onEmulator('orders/b1'), { total: 1 });
      assert.deepEqual(await onEmulator('orders/o1'), { total: 15 });
      assert.equal(await onEmulator('orders/o2'), undefined);
      assert.deepEqual(summary([await onlyRpc(fx, mark, 'Commit')]), [['Commit', 'allow', RULE.ordersRw, ['orders/b1', 'orders/o1', 'orders/o2'], 0, 3]]);
    });

    test('a WriteBatch with one denied document: PERMISSION_DENIED and nothing written', async () => {
      const mark = await fx.mark();
      const batch = orders.batch();
      batch.set(orders.doc('orders/b1'), { total: 1 });
      batch.delete(orders.doc('orders/o2'));
      batch.set(orders.doc('users/u2'), { name: 'Eve' });
      await assert.rejects(batch.commit(), (error: GrpcFailure) => isDenied(error, 'users/u2'));
      assert.equal(await onEmulator('orders/b1'), undefined);
      assert.deepEqual(await onEmulator('orders/o2'), { total: 20 });
      assert.equal(await onEmulator('users/u2'), undefined);
      assert.deepEqual(summary([await onlyRpc(fx, mark, 'Commit')]), [['Commit', 'deny', null, ['orders/b1', 'orders/o2', 'users/u2'], PERMISSION_DENIED, 0]]);
    });
  });

  describe('BulkWriter (BatchWrite)', () => {
    test('all allowed: every write lands', async () => {
      const mark = await fx.mark();
      const writer = orders.bulkWriter();
      const results = [writer.set(orders.doc('orders/w1'), { total: 1 }), writer.update(orders.doc('orders/o1'), { total: 2 })];
      await writer.close();
      await Promise.all(results);
      assert.deepEqual(await onEmulator('orders/w1'), { total: 1 });
      assert.deepEqual(await onEmulator('orders/o1'), { total: 2 });
      assert.deepEqual(summary([await onlyRpc(fx, mark, 'BatchWrite')]), [['BatchWrite', 'allow', RULE.ordersRw, ['orders/w1', 'orders/o1'], 0, 2]]);
    });

    test('one denied document: meshgate refuses the whole BatchWrite, every write fails, nothing is written', async () => {
      const mark = await fx.mark();
      const writer = orders.bulkWriter();
      writer.onWriteError(() => false);
      const outcomes = [writer.set(orders.doc('orders/w1'), { total: 1 }), writer.set(orders.doc('users/w2'), { name: 'Eve' }), writer.delete(orders.doc('orders/o2'))].map((p) =>
        p.then(
          () => 'written',
          (error: GrpcFailure) => error,
        ),
      );
      await writer.close();
      const settled = await Promise.all(outcomes);
      for (const outcome of settled) {
        assert.notEqual(outcome, 'written');
        isDenied(outcome as GrpcFailure, 'users/w2');
      }
      assert.equal(await onEmulator('orders/w1'), undefined);
      assert.equal(await onEmulator('users/w2'), undefined);
      assert.deepEqual(await onEmulator('orders/o2'), { total: 20 });
      // The event lists every path the request touched, the denied one among them.
      assert.deepEqual(summary(await waitForRpc(fx, mark, 'BatchWrite')), [['BatchWrite', 'deny', null, ['orders/w1', 'users/w2', 'orders/o2'], PERMISSION_DENIED, 0]]);
    });
  });
});
