/**
 * describeRequest: what each google.firestore.v1.Firestore request touches, from requests
 * encoded with Google's OFFICIAL message types (the protos that ship with
 * @google-cloud/firestore), so the field numbers meshgate decodes are checked against what
 * real clients send. Then properties: random bytes never escape as anything but a
 * MeshgateError, and random valid names and queries decode to the paths that were encoded.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { isMeshgateError, type ErrorCode } from '../../../src/errors/index.ts';
import { describeRequest, METHODS, type MethodSpec, type RequestFacts } from '../../../src/engines/firestore/codec/access.ts';

const require = createRequire(import.meta.url);
const protosDir = join(dirname(require.resolve('@google-cloud/firestore/package.json')), 'build', 'protos');
const official = protobuf.Root.fromJSON(require(join(protosDir, 'v1.json')) as protobuf.INamespace);

const DB = 'projects/p1/databases/(default)';
const ROOT = `${DB}/documents`;
const doc = (path: string, db = DB) => `${db}/documents/${path}`;
const TX = Buffer.from('tx-1');
const TX_HEX = TX.toString('hex');

/** Encodes `object` (protobufjs JSON field names) as google.firestore.v1.<type>. */
function encode(type: string, object: Record<string, unknown>): Buffer {
  const T = official.lookupType(`google.firestore.v1.${type}`);
  const message = T.fromObject(object);
  const problem = T.verify(message);
  if (problem !== null) throw new TypeError(`${type}: ${problem}`);
  return Buffer.from(T.encode(message).finish());
}

function spec(name: string): MethodSpec {
  const found = METHODS.get(`google.firestore.v1.Firestore/${name}`);
  if (found === undefined) throw new TypeError(`no method ${name}`);
  return found;
}

function describe_(method: string, object: Record<string, unknown>): RequestFacts {
  return describeRequest(spec(method), encode(`${method}Request`, object));
}

/** The accesses as [path, kind, operation], plus the database each names. */
function accesses(facts: RequestFacts): [string, string, string][] {
  return facts.accesses.map((a) => [a.path, a.kind, a.operation]);
}

function refuses(fn: () => unknown, code: ErrorCode = 'MG_PACKET_MALFORMED', message?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(isMeshgateError(error), `expected a MeshgateError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  });
}

const P1 = { project: 'p1', database: '(default)' };

/** The project and database a request is judged in (for transactions, the pathless ones). */
function dbOf(facts: RequestFacts): { project: string; database: string } {
  return { project: facts.database.project, database: facts.database.database };
}

describe('METHODS', () => {
  test('lists every RPC of google.firestore.v1.Firestore that the official service defines, with its streaming shape', () => {
    const service = official.lookupService('google.firestore.v1.Firestore');
    const served = new Set([...METHODS.values()].map((m) => m.name));
    for (const method of service.methodsArray) {
      if (!served.has(method.name)) continue; // refused by the engine as unknown, tested in the integration suite
      const ours = spec(method.name);
      const shape = method.requestStream && method.responseStream ? 'bidi' : method.responseStream ? 'server' : 'unary';
      assert.equal(ours.streaming, shape, method.name);
      assert.equal(ours.request, method.requestType.replace(/^.*\./, ''), method.name);
    }
    assert.equal(served.size, 16);
    // Anything the service adds later (ExecutePipeline…) is not served until meshgate knows its paths.
    assert.equal(METHODS.get('google.firestore.v1.Firestore/ExecutePipeline'), undefined);
  });
});

describe('describeRequest: one test per method, official encodings', () => {
  test('GetDocument: one document, read; the transaction it reads in', () => {
    const facts = describe_('GetDocument', { name: doc('orders/o1'), mask: { fieldPaths: ['a'] }, transaction: TX });
    assert.deepEqual(accesses(facts), [['orders/o1', 'document', 'read']]);
    assert.deepEqual(dbOf(facts), P1);
    assert.equal(facts.transaction, TX_HEX);
    assert.equal(facts.writes, 0);
    assert.equal(facts.beginsTransaction, null);
    assert.equal(describe_('GetDocument', { name: doc('a/b/c/d') }).transaction, null);
    assert.deepEqual(accesses(describe_('GetDocument', { name: doc('a/b/c/d', 'projects/p1/databases/other') })), [['a/b/c/d', 'document', 'read']]);
    assert.equal(describe_('GetDocument', { name: doc('a/b', 'projects/p1/databases/other') }).database.database, 'other');
    refuses(() => describe_('GetDocument', { name: doc('orders') }), 'MG_PACKET_MALFORMED', /does not name a document/);
    refuses(() => describe_('GetDocument', { name: ROOT }), 'MG_PACKET_MALFORMED', /does not name a document/);
    refuses(() => describe_('GetDocument', { name: '' }), 'MG_PACKET_MALFORMED', /not a Firestore resource name/);
    refuses(() => describe_('GetDocument', { name: doc('orders/../secrets/s1') }));
    refuses(() => describe_('GetDocument', { name: doc('orders//o1') }));
    refuses(() => describe_('GetDocument', { name: 'projects/p1/databases/(default)/orders/o1' }));
  });

  test('ListDocuments: the collection under the parent, read; without collection_id the subtree', () => {
    assert.deepEqual(accesses(describe_('ListDocuments', { parent: ROOT, collectionId: 'orders', pageSize: 10 })), [['orders', 'collection', 'read']]);
    const nested = describe_('ListDocuments', { parent: doc('orders/o1'), collectionId: 'items', transaction: TX, showMissing: true });
    assert.deepEqual(accesses(nested), [['orders/o1/items', 'collection', 'read']]);
    assert.equal(nested.transaction, TX_HEX);
    // Every collection under the parent: judged as everything beneath it, at any depth.
    assert.deepEqual(accesses(describe_('ListDocuments', { parent: ROOT })), [['**', 'subtree', 'read']]);
    const everyCollection = describe_('ListDocuments', { parent: doc('orders/o1'), pageSize: 5, transaction: TX });
    assert.deepEqual(accesses(everyCollection), [['orders/o1/**', 'subtree', 'read']]);
    assert.equal(everyCollection.transaction, TX_HEX);
    refuses(() => describe_('ListDocuments', { parent: doc('orders') }), 'MG_PACKET_MALFORMED', /documents root or a document/);
    refuses(() => describe_('ListDocuments', { parent: doc('orders'), collectionId: 'x' }), 'MG_PACKET_MALFORMED', /documents root or a document/);
    refuses(() => describe_('ListDocuments', { parent: ROOT, collectionId: 'a/b' }), 'MG_PACKET_MALFORMED', /not a collection id/);
    refuses(() => describe_('ListDocuments', { parent: ROOT, collectionId: '..' }));
  });

  test('CreateDocument: the named document, or the whole collection when Firestore picks the id; a write', () => {
    const named = describe_('CreateDocument', { parent: ROOT, collectionId: 'orders', documentId: 'o9', document: { fields: { a: { stringValue: 'x' } } } });
    assert.deepEqual(accesses(named), [['orders/o9', 'document', 'write']]);
    assert.equal(named.writes, 1);
    assert.deepEqual(accesses(describe_('CreateDocument', { parent: doc('orders/o1'), collectionId: 'items' })), [['orders/o1/items', 'collection', 'write']]);
    refuses(() => describe_('CreateDocument', { parent: ROOT, collectionId: '' }));
    refuses(() => describe_('CreateDocument', { parent: ROOT, collectionId: 'orders', documentId: 'a/b' }));
  });

  test('UpdateDocument and DeleteDocument: one document, a write', () => {
    const update = describe_('UpdateDocument', { document: { name: doc('orders/o1'), fields: { n: { integerValue: 1 } } }, updateMask: { fieldPaths: ['n'] }, currentDocument: { exists: true } });
    assert.deepEqual(accesses(update), [['orders/o1', 'document', 'write']]);
    assert.equal(update.writes, 1);
    refuses(() => describe_('UpdateDocument', { updateMask: { fieldPaths: ['n'] } }));
    const del = describe_('DeleteDocument', { name: doc('orders/o1/items/i1'), currentDocument: { exists: true } });
    assert.deepEqual(accesses(del), [['orders/o1/items/i1', 'document', 'write']]);
    assert.equal(del.writes, 1);
    refuses(() => describe_('DeleteDocument', { name: doc('orders') }));
  });

  test('BatchGetDocuments: every document, read; transaction or new read-only / read-write transaction', () => {
    const facts = describe_('BatchGetDocuments', { database: DB, documents: [doc('orders/o1'), doc('customers/c1')], mask: { fieldPaths: ['a'] }, newTransaction: { readOnly: {} } });
    assert.deepEqual(accesses(facts), [
      ['orders/o1', 'document', 'read'],
      ['customers/c1', 'document', 'read'],
    ]);
    assert.deepEqual(dbOf(facts), P1);
    assert.equal(facts.beginsTransaction, 'read-only');
    assert.equal(facts.transaction, null);
    assert.equal(describe_('BatchGetDocuments', { database: DB, documents: [doc('a/b')], newTransaction: { readWrite: {} } }).beginsTransaction, 'read-write');
    const inTx = describe_('BatchGetDocuments', { database: DB, documents: [doc('a/b')], transaction: TX });
    assert.equal(inTx.transaction, TX_HEX);
    assert.equal(inTx.beginsTransaction, null);
    assert.deepEqual(describe_('BatchGetDocuments', { database: DB }).accesses, []);
    refuses(() => describe_('BatchGetDocuments', { database: `${DB}/documents`, documents: [doc('a/b')] }));
    refuses(() => describe_('BatchGetDocuments', { database: DB, documents: [doc('a/b'), doc('a')] }), 'MG_PACKET_MALFORMED', /documents\[1\]/);
  });

  test('BeginTransaction: no paths; read-only when asked, read-write otherwise', () => {
    const ro = describe_('BeginTransaction', { database: DB, options: { readOnly: { readTime: { seconds: 1 } } } });
    assert.deepEqual(ro.accesses, []);
    assert.deepEqual(dbOf(ro), P1);
    assert.equal(ro.beginsTransaction, 'read-only');
    assert.equal(describe_('BeginTransaction', { database: DB, options: { readWrite: { retryTransaction: TX } } }).beginsTransaction, 'read-write');
    assert.equal(describe_('BeginTransaction', { database: DB }).beginsTransaction, 'read-write');
    refuses(() => describe_('BeginTransaction', { database: 'projects/p1' }));
  });

  test('Commit: every write (update, delete, transform), counted; the transaction', () => {
    const facts = describe_('Commit', {
      database: DB,
      writes: [
        { update: { name: doc('orders/o1'), fields: { qty: { integerValue: 3 } } }, updateMask: { fieldPaths: ['qty'] }, updateTransforms: [{ fieldPath: 't', setToServerValue: 'REQUEST_TIME' }] },
        { delete: doc('orders/o2'), currentDocument: { exists: true } },
        { transform: { document: doc('orders/o3/items/i1'), fieldTransforms: [{ fieldPath: 'n', increment: { integerValue: 1 } }] } },
      ],
      transaction: TX,
    });
    assert.deepEqual(accesses(facts), [
      ['orders/o1', 'document', 'write'],
      ['orders/o2', 'document', 'write'],
      ['orders/o3/items/i1', 'document', 'write'],
    ]);
    assert.equal(facts.writes, 3);
    assert.equal(facts.transaction, TX_HEX);
    assert.deepEqual(dbOf(facts), P1);
    const empty = describe_('Commit', { database: DB, transaction: TX });
    assert.deepEqual(empty.accesses, []);
    assert.equal(empty.writes, 0);
    refuses(() => describe_('Commit', { database: DB, writes: [{ updateMask: { fieldPaths: ['a'] } }] }), 'MG_PACKET_MALFORMED', /writes\[0\]/);
    refuses(() => describe_('Commit', { database: DB, writes: [{ update: { name: doc('orders/o1') } }, { delete: doc('orders') }] }), 'MG_PACKET_MALFORMED', /writes\[1\]/);
    refuses(() => describe_('Commit', { writes: [{ delete: doc('orders/o1') }] }));
  });

  test('Rollback: no paths; the transaction', () => {
    const facts = describe_('Rollback', { database: DB, transaction: TX });
    assert.deepEqual(facts.accesses, []);
    assert.equal(facts.transaction, TX_HEX);
    assert.equal(facts.writes, 0);
  });

  test('RunQuery: the collection (or collection group) under the parent, read; transactions', () => {
    const query = { from: [{ collectionId: 'orders' }], where: { fieldFilter: { field: { fieldPath: 'a' }, op: 'EQUAL', value: { integerValue: 1 } } }, limit: { value: 5 } };
    const facts = describe_('RunQuery', { parent: ROOT, structuredQuery: query, newTransaction: { readOnly: {} } });
    assert.deepEqual(accesses(facts), [['orders', 'collection', 'read']]);
    assert.deepEqual(dbOf(facts), P1);
    assert.equal(facts.beginsTransaction, 'read-only');
    const group = describe_('RunQuery', { parent: doc('orders/o1'), structuredQuery: { from: [{ collectionId: 'items', allDescendants: true }] }, transaction: TX });
    assert.deepEqual(accesses(group), [['orders/o1/**/items', 'collection-group', 'read']]);
    assert.equal(group.transaction, TX_HEX);
    assert.deepEqual(accesses(describe_('RunQuery', { parent: ROOT, structuredQuery: { from: [{ collectionId: 'items', allDescendants: true }] } })), [['**/items', 'collection-group', 'read']]);
    refuses(() => describe_('RunQuery', { parent: ROOT }), 'MG_PACKET_MALFORMED', /must name the collection/);
    refuses(() => describe_('RunQuery', { parent: ROOT, structuredQuery: { limit: { value: 1 } } }), 'MG_PACKET_MALFORMED', /must name the collection/);
    refuses(() => describe_('RunQuery', { parent: doc('orders'), structuredQuery: query }));
    refuses(() => describe_('RunQuery', { parent: ROOT, structuredQuery: { from: [{ collectionId: 'a/b' }] } }));
  });

  test('a selector without collection id (recursiveDelete): the subtree beneath the parent, with or without allDescendants', () => {
    const recursive = { from: [{ allDescendants: true }], select: { fields: [{ fieldPath: '__name__' }] }, limit: { value: 5000 } };
    assert.deepEqual(accesses(describe_('RunQuery', { parent: doc('orders/o1'), structuredQuery: recursive })), [['orders/o1/**', 'subtree', 'read']]);
    assert.deepEqual(accesses(describe_('RunQuery', { parent: ROOT, structuredQuery: recursive })), [['**', 'subtree', 'read']]);
    // One level only, as Firestore answers it; judged as the whole subtree, never narrower.
    assert.deepEqual(accesses(describe_('RunQuery', { parent: doc('orders/o1'), structuredQuery: { from: [{ collectionId: '' }] } })), [['orders/o1/**', 'subtree', 'read']]);
    const aggregate = { structuredQuery: { from: [{ allDescendants: true }] }, aggregations: [{ alias: 'n', count: {} }] };
    assert.deepEqual(accesses(describe_('RunAggregationQuery', { parent: doc('a/b/c/d'), structuredAggregationQuery: aggregate })), [['a/b/c/d/**', 'subtree', 'read']]);
    assert.deepEqual(accesses(describe_('PartitionQuery', { parent: ROOT, structuredQuery: { from: [{ allDescendants: true }] }, partitionCount: 2 })), [['**', 'subtree', 'admin']]);
    const listen = describe_('Listen', { database: DB, addTarget: { targetId: 3, query: { parent: doc('orders/o1'), structuredQuery: { from: [{ allDescendants: true }] } } } });
    assert.deepEqual(accesses(listen), [['orders/o1/**', 'subtree', 'read']]);
    // The parent must still be a document or the root.
    refuses(() => describe_('RunQuery', { parent: doc('orders'), structuredQuery: recursive }), 'MG_PACKET_MALFORMED', /documents root or a document/);
  });

  test('RunAggregationQuery: the query inside the aggregation, read', () => {
    const facts = describe_('RunAggregationQuery', {
      parent: doc('orders/o1'),
      structuredAggregationQuery: { structuredQuery: { from: [{ collectionId: 'items' }] }, aggregations: [{ alias: 'n', count: {} }] },
      newTransaction: { readWrite: {} },
    });
    assert.deepEqual(accesses(facts), [['orders/o1/items', 'collection', 'read']]);
    assert.equal(facts.beginsTransaction, 'read-write');
    assert.equal(describe_('RunAggregationQuery', { parent: ROOT, structuredAggregationQuery: { structuredQuery: { from: [{ collectionId: 'x' }] } }, transaction: TX }).transaction, TX_HEX);
    refuses(() => describe_('RunAggregationQuery', { parent: ROOT, structuredAggregationQuery: { aggregations: [{ alias: 'n', count: {} }] } }));
    refuses(() => describe_('RunAggregationQuery', { parent: ROOT }));
  });

  test('PartitionQuery: the queried collection group, admin', () => {
    const facts = describe_('PartitionQuery', { parent: ROOT, structuredQuery: { from: [{ collectionId: 'orders', allDescendants: true }], orderBy: [{ field: { fieldPath: '__name__' } }] }, partitionCount: 4 });
    assert.deepEqual(accesses(facts), [['**/orders', 'collection-group', 'admin']]);
    assert.equal(facts.writes, 0);
  });

  test('Write (stream): the first message names the database, later ones carry writes without it', () => {
    const first = describe_('Write', { database: DB, labels: { a: 'b' } });
    assert.deepEqual(first.accesses, []);
    assert.deepEqual(dbOf(first), P1);
    const later = describe_('Write', { streamId: 's', streamToken: Buffer.from('t'), writes: [{ update: { name: doc('orders/o1') } }, { delete: doc('orders/o2') }] });
    assert.deepEqual(accesses(later), [
      ['orders/o1', 'document', 'write'],
      ['orders/o2', 'document', 'write'],
    ]);
    assert.equal(later.writes, 2);
    assert.deepEqual(dbOf(later), P1);
    // A later message with neither (a bare stream token, to acknowledge): no paths, no project to check.
    const ack = describe_('Write', { streamToken: Buffer.from('t') });
    assert.deepEqual(ack.accesses, []);
    assert.deepEqual(ack.database, { project: '', database: '' });
    refuses(() => describe_('Write', { database: 'nope' }));
  });

  test('Listen: documents or a query target, read; removing a target touches nothing', () => {
    const docs = describe_('Listen', { database: DB, addTarget: { targetId: 1, documents: { documents: [doc('orders/o1'), doc('orders/o2')] } } });
    assert.deepEqual(accesses(docs), [
      ['orders/o1', 'document', 'read'],
      ['orders/o2', 'document', 'read'],
    ]);
    assert.deepEqual(dbOf(docs), P1);
    const query = describe_('Listen', { database: DB, addTarget: { targetId: 2, query: { parent: ROOT, structuredQuery: { from: [{ collectionId: 'items', allDescendants: true }] } }, resumeToken: Buffer.from('r') } });
    assert.deepEqual(accesses(query), [['**/items', 'collection-group', 'read']]);
    const remove = describe_('Listen', { database: DB, removeTarget: 1 });
    assert.deepEqual(remove.accesses, []);
    refuses(() => describe_('Listen', { database: DB, addTarget: { targetId: 3 } }), 'MG_PACKET_MALFORMED', /must name documents or a query/);
    refuses(() => describe_('Listen', { database: DB, addTarget: { documents: {} } }), 'MG_PACKET_MALFORMED', /must name documents or a query/);
    refuses(() => describe_('Listen', { database: DB, addTarget: { query: { parent: ROOT } } }));
    refuses(() => describe_('Listen', { addTarget: { documents: { documents: [doc('a/b')] } } }));
  });

  test('ListCollectionIds: the parent document (or the root), admin', () => {
    assert.deepEqual(accesses(describe_('ListCollectionIds', { parent: doc('orders/o1'), pageSize: 10 })), [['orders/o1', 'document', 'admin']]);
    assert.deepEqual(accesses(describe_('ListCollectionIds', { parent: ROOT })), [['', 'document', 'admin']]);
    refuses(() => describe_('ListCollectionIds', { parent: doc('orders') }));
  });

  test('BatchWrite: every write, counted', () => {
    const facts = describe_('BatchWrite', { database: DB, writes: [{ update: { name: doc('a/1') } }, { delete: doc('b/2') }, { transform: { document: doc('c/3') } }], labels: { x: 'y' } });
    assert.deepEqual(accesses(facts), [
      ['a/1', 'document', 'write'],
      ['b/2', 'document', 'write'],
      ['c/3', 'document', 'write'],
    ]);
    assert.equal(facts.writes, 3);
    assert.equal(facts.transaction, null);
  });

  test('the project and database each path names are reported per access (the engine checks them)', () => {
    const facts = describe_('BatchGetDocuments', { database: DB, documents: [doc('a/b', 'projects/p2/databases/(default)'), doc('a/b', 'projects/p1/databases/db2')] });
    assert.deepEqual(
      facts.accesses.map((a) => [a.database.project, a.database.database]),
      [
        ['p2', '(default)'],
        ['p1', 'db2'],
      ],
    );
  });
});

/**
 * The wire allows what the official encoder never produces: a singular message field twice
 * (the receiver MERGES the two) and two members of one oneof (the LAST one wins). Firestore
 * (Java/C++ protobuf) does both; meshgate must authorize what Firestore will act on, or
 * refuse the request.
 */
describe('describeRequest: what Firestore acts on when the wire repeats a field', () => {
  /** Either refused as malformed, or every path in `mustCover` is among the accesses. */
  function coversOrRefuses(method: string, payload: Buffer, mustCover: readonly string[]): void {
    let facts: RequestFacts;
    try {
      facts = describeRequest(spec(method), payload);
    } catch (error) {
      assert.ok(isMeshgateError(error) && error.code === 'MG_PACKET_MALFORMED', String(error));
      return;
    }
    const paths = facts.accesses.map((a) => a.path);
    for (const path of mustCover) assert.ok(paths.includes(path), `Firestore acts on ${path}; meshgate authorized only ${JSON.stringify(paths)}`);
  }

  test('a singular string field twice: refused as ambiguous, or read as Firestore reads it (the last one)', () => {
    const payload = Buffer.concat([encode('GetDocumentRequest', { name: doc('secrets/s1') }), encode('GetDocumentRequest', { name: doc('orders/o1') })]);
    let facts: RequestFacts;
    try {
      facts = describeRequest(spec('GetDocument'), payload);
    } catch (error) {
      assert.ok(isMeshgateError(error) && error.code === 'MG_PACKET_MALFORMED', String(error));
      assert.match(error.message, /GetDocumentRequest\.name more than once/);
      return;
    }
    assert.deepEqual(accesses(facts), [['orders/o1', 'document', 'read']]);
  });

  test('a known field with the wrong wire type, or a group: refused (Google would skip it as unknown, protobufjs would read it)', () => {
    const nameAsVarint = Buffer.from([0x08, 0x01]); // field 1 (name), wire type 0
    refuses(() => describeRequest(spec('GetDocument'), Buffer.concat([encode('GetDocumentRequest', { name: doc('orders/o1') }), nameAsVarint])), 'MG_PACKET_MALFORMED', /wire type 0 instead of 2/);
    const group = Buffer.from([0x7b, 0x7c]); // field 15, start group / end group
    refuses(() => describeRequest(spec('GetDocument'), Buffer.concat([encode('GetDocumentRequest', { name: doc('orders/o1') }), group])), 'MG_PACKET_MALFORMED', /group/);
    // Unknown fields of the ordinary kinds are skipped, as Google does.
    const unknown = encode('GetDocumentRequest', { name: doc('orders/o1'), mask: { fieldPaths: ['a', 'b'] }, readTime: { seconds: 5 } });
    assert.deepEqual(accesses(describeRequest(spec('GetDocument'), unknown)), [['orders/o1', 'document', 'read']]);
  });

  test(
    'Write with update then delete (oneof `operation`): Firestore deletes; meshgate must authorize the delete',
    () => {
      const write = Buffer.concat([encode('Write', { update: { name: doc('orders/o1') } }), encode('Write', { delete: doc('secrets/s1') })]);
      const commit = Buffer.concat([encode('CommitRequest', { database: DB }), fieldBytes(2, write)]);
      coversOrRefuses('Commit', commit, ['secrets/s1']);
      const transform = Buffer.concat([encode('Write', { update: { name: doc('orders/o1') } }), encode('Write', { transform: { document: doc('secrets/s1') } })]);
      coversOrRefuses('BatchWrite', Buffer.concat([encode('BatchWriteRequest', { database: DB }), fieldBytes(2, transform)]), ['secrets/s1']);
    },
  );

  test(
    'Listen target with documents then query (oneof `target_type`): Firestore listens to the query',
    () => {
      const target = Buffer.concat([
        encode('Target', { targetId: 1, documents: { documents: [doc('orders/o1')] } }),
        encode('Target', { query: { parent: ROOT, structuredQuery: { from: [{ collectionId: 'secrets' }] } } }),
      ]);
      coversOrRefuses('Listen', Buffer.concat([encode('ListenRequest', { database: DB }), fieldBytes(2, target)]), ['secrets']);
    },
  );

  test(
    'Listen add_target twice: Firestore merges the two targets (documents of both)',
    () => {
      const payload = Buffer.concat([
        encode('ListenRequest', { database: DB, addTarget: { targetId: 1, documents: { documents: [doc('secrets/s1')] } } }),
        encode('ListenRequest', { addTarget: { documents: { documents: [doc('orders/o1')] } } }),
      ]);
      coversOrRefuses('Listen', payload, ['secrets/s1', 'orders/o1']);
    },
  );

  test(
    'RunQuery structured_query twice: Firestore merges the `from` lists',
    () => {
      const payload = Buffer.concat([
        encode('RunQueryRequest', { parent: ROOT, structuredQuery: { from: [{ collectionId: 'secrets' }] } }),
        encode('RunQueryRequest', { structuredQuery: { from: [{ collectionId: 'orders' }] } }),
      ]);
      coversOrRefuses('RunQuery', payload, ['secrets', 'orders']);
    },
  );

  test('UpdateDocument document twice, the second without a name: refused (fails closed)', () => {
    const payload = Buffer.concat([encode('UpdateDocumentRequest', { document: { name: doc('secrets/s1') } }), encode('UpdateDocumentRequest', { document: { fields: { a: { stringValue: 'x' } } } })]);
    coversOrRefuses('UpdateDocument', payload, ['secrets/s1']);
  });
});

/** Field `number`, wire type 2 (length-delimited), around `bytes`. */
function fieldBytes(number: number, bytes: Buffer): Buffer {
  const writer = protobuf.Writer.create();
  writer.uint32((number << 3) | 2).bytes(bytes);
  return Buffer.from(writer.finish());
}

describe('describeRequest properties', () => {
  const ALL = [...METHODS.values()];

  test(
    'random bytes, every method: returns, or throws a MeshgateError MG_PACKET_MALFORMED; never another exception type',
    () => {
      fc.assert(
        fc.property(fc.constantFrom(...ALL), fc.uint8Array({ maxLength: 200 }), (method, bytes) => {
          try {
            describeRequest(method, Buffer.from(bytes));
          } catch (error) {
            assert.ok(isMeshgateError(error), `${method.name}: ${String(error)}`);
            assert.equal(error.code, 'MG_PACKET_MALFORMED');
          }
        }),
        { numRuns: 2000 },
      );
    },
  );

  test('random bytes, every method: never hangs, and a thrown error is an Error (what call.ts wraps as MG_PACKET_MALFORMED)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ALL), fc.uint8Array({ maxLength: 2000 }), (method, bytes) => {
        const started = performance.now();
        try {
          describeRequest(method, Buffer.from(bytes));
        } catch (error) {
          assert.ok(error instanceof Error, String(error));
        }
        assert.ok(performance.now() - started < 200, `${method.name} took ${performance.now() - started} ms on ${bytes.length} bytes`);
      }),
      { numRuns: 3000 },
    );
  });

  test('deeply nested groups of an unknown field (stack exhaustion) end in an Error, not a crash', () => {
    const nested = Buffer.concat([Buffer.alloc(200_000, 0x1b), Buffer.alloc(200_000, 0x1c)]); // field 3 start/end group
    for (const method of ALL) {
      try {
        describeRequest(method, nested);
      } catch (error) {
        assert.ok(error instanceof Error, `${method.name}: ${String(error)}`);
      }
    }
  });

  // Random valid Firestore ids: no '/', not '.' or '..', not empty; any other Unicode.
  const id = fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' }).filter((s) => !s.includes('/') && s !== '.' && s !== '..' && !s.includes('\u0000'));
  const project = fc.stringMatching(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/);
  const database = fc.oneof(fc.constant('(default)'), fc.stringMatching(/^[a-z][a-z0-9-]{2,20}$/));
  const docPath = fc.array(fc.tuple(id, id), { minLength: 1, maxLength: 4 }).map((pairs) => pairs.flat());
  const parentPath = fc.array(fc.tuple(id, id), { maxLength: 3 }).map((pairs) => pairs.flat());
  const dbName = fc.tuple(project, database).map(([p, d]) => ({ p, d, name: `projects/${p}/databases/${d}` }));

  test('random valid document names decode to the path that was encoded, for every single-document method', () => {
    fc.assert(
      fc.property(dbName, docPath, fc.uint8Array({ maxLength: 16 }), (db, segments, tx) => {
        const name = `${db.name}/documents/${segments.join('/')}`;
        const path = segments.join('/');
        const cases: [string, Record<string, unknown>, string][] = [
          ['GetDocument', { name, transaction: tx }, 'read'],
          ['DeleteDocument', { name }, 'write'],
          ['UpdateDocument', { document: { name, fields: { f: { stringValue: path } } } }, 'write'],
        ];
        for (const [method, object, operation] of cases) {
          const facts = describe_(method, object);
          assert.deepEqual(accesses(facts), [[path, 'document', operation]], method);
          assert.deepEqual([facts.database.project, facts.database.database], [db.p, db.d]);
        }
        assert.equal(describe_('GetDocument', { name, transaction: tx }).transaction, tx.length === 0 ? null : Buffer.from(tx).toString('hex'));
      }),
      { numRuns: 300 },
    );
  });

  test('random batches of writes and gets decode to the paths, in order', () => {
    const write = fc.tuple(fc.constantFrom('update', 'delete', 'transform'), docPath);
    fc.assert(
      fc.property(dbName, fc.array(write, { maxLength: 8 }), (db, writes) => {
        const name = (segments: string[]) => `${db.name}/documents/${segments.join('/')}`;
        const encoded = writes.map(([kind, segments]) =>
          kind === 'update' ? { update: { name: name(segments) } } : kind === 'delete' ? { delete: name(segments) } : { transform: { document: name(segments), fieldTransforms: [{ fieldPath: 'n', increment: { integerValue: 1 } }] } },
        );
        const expected = writes.map(([, segments]) => [segments.join('/'), 'document', 'write']);
        for (const method of ['Commit', 'BatchWrite', 'Write']) {
          const facts = describe_(method, { database: db.name, writes: encoded });
          assert.deepEqual(accesses(facts), expected, method);
          assert.equal(facts.writes, writes.length);
        }
        const gets = describe_('BatchGetDocuments', { database: db.name, documents: writes.map(([, segments]) => name(segments)) });
        assert.deepEqual(
          accesses(gets),
          writes.map(([, segments]) => [segments.join('/'), 'document', 'read']),
        );
      }),
      { numRuns: 300 },
    );
  });

  test('random structured queries decode to the collections (and groups) that were encoded, for every query method', () => {
    const selector = fc.record({ collectionId: fc.oneof({ arbitrary: id, weight: 4 }, { arbitrary: fc.constant(''), weight: 1 }), allDescendants: fc.boolean() });
    fc.assert(
      fc.property(dbName, parentPath, fc.array(selector, { minLength: 1, maxLength: 3 }), fc.nat({ max: 100 }), (db, parent, from, limit) => {
        const parentName = parent.length === 0 ? `${db.name}/documents` : `${db.name}/documents/${parent.join('/')}`;
        const base = parent.join('/');
        const under = (child: string) => (base === '' ? child : `${base}/${child}`);
        const structuredQuery = { from, limit: { value: limit }, orderBy: [{ field: { fieldPath: '__name__' }, direction: 'ASCENDING' }] };
        const expected = (operation: string) =>
          from.map((s) =>
            s.collectionId === ''
              ? [under('**'), 'subtree', operation]
              : s.allDescendants
                ? [under(`**/${s.collectionId}`), 'collection-group', operation]
                : [under(s.collectionId), 'collection', operation],
          );
        assert.deepEqual(accesses(describe_('RunQuery', { parent: parentName, structuredQuery })), expected('read'));
        assert.deepEqual(accesses(describe_('RunAggregationQuery', { parent: parentName, structuredAggregationQuery: { structuredQuery, aggregations: [{ alias: 'c', count: {} }] } })), expected('read'));
        assert.deepEqual(accesses(describe_('PartitionQuery', { parent: parentName, structuredQuery, partitionCount: 2 })), expected('admin'));
        assert.deepEqual(accesses(describe_('Listen', { database: db.name, addTarget: { targetId: 1, query: { parent: parentName, structuredQuery } } })), expected('read'));
        const listing = describe_('ListDocuments', { parent: parentName, collectionId: from[0]!.collectionId });
        const listed = from[0]!.collectionId === '' ? [under('**'), 'subtree', 'read'] : [under(from[0]!.collectionId), 'collection', 'read'];
        assert.deepEqual(accesses(listing), [listed]);
        for (const facts of [listing, describe_('RunQuery', { parent: parentName, structuredQuery })]) {
          assert.deepEqual([facts.database.project, facts.database.database], [db.p, db.d]);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('random names with a bad segment (empty, ".", "..") or the wrong shape are refused as malformed, never accepted', () => {
    const bad = fc.constantFrom('', '.', '..');
    fc.assert(
      fc.property(dbName, docPath, bad, fc.nat(), (db, segments, badSegment, at) => {
        const broken = [...segments];
        broken[at % broken.length] = badSegment;
        refuses(() => describe_('GetDocument', { name: `${db.name}/documents/${broken.join('/')}` }));
        refuses(() => describe_('GetDocument', { name: `${db.name}/documents/${segments.slice(1).join('/')}` }));
        refuses(() => describe_('GetDocument', { name: `${db.name}/${segments.join('/')}` }));
      }),
      { numRuns: 300 },
    );
  });
});
