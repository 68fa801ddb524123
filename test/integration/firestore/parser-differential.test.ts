/**
 * What meshgate authorizes must be what Firestore executes. meshgate decodes each request
 * with a trimmed protobufjs schema; Google's parsers follow the protobuf rules exactly:
 *  - a known field with the wrong wire type is an unknown field, skipped (protobufjs reads it
 *    as if the type were right);
 *  - a singular embedded message that occurs twice is merged (protobufjs keeps the last);
 *  - of a oneof, the member last on the wire wins (meshgate picks by its own priority).
 * Each difference lets a caller show meshgate an allowed path while Firestore acts on a
 * denied one. These requests are hand-encoded (valid protobuf, as Google reads it) and sent
 * with grpc-js as the orders workload, which may touch orders/* but not users/*; the
 * emulator is checked directly for what really happened.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeMessage,
  encodeMessage,
  FIRESTORE_POLICY,
  FIRESTORE_SKIP,
  FIRESTORE_WORKLOADS,
  grpc,
  INVALID_ARGUMENT,
  PERMISSION_DENIED,
  rawFirestore,
  startFirestoreFixture,
  waitForRpc,
  type FirestoreFixture,
  type RawFirestore,
} from '../../helpers/firestore.ts';

const PROJECT = 'mg-it-parser';
const DATABASE = `projects/${PROJECT}/databases/(default)`;
const docName = (path: string) => `${DATABASE}/documents/${path}`;

// Protobuf by hand: tag = field << 3 | wire type; 2 = length-delimited, 5 = fixed32.
function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
const field = (number: number, value: Buffer | string) => {
  const bytes = Buffer.from(value);
  return Buffer.concat([varint((number << 3) | 2), varint(bytes.length), bytes]);
};
const varintField = (number: number, value: number) => Buffer.concat([varint(number << 3), varint(value)]);

/**
 * Field 1 again, with wire type 5 (fixed32), hiding `name` (106 bytes, `projects/…`).
 * protobufjs reads a length (106) and the 106 bytes as the string. Google skips 4 bytes
 * (106 'p' 'r' 'o') as an unknown fixed32, then reads 'j' (0x6a: field 13, length-delimited)
 * with length 'e' (101) and skips the remaining 101 bytes: the name is invisible to it.
 */
function hiddenName(name: string): Buffer {
  assert.equal(Buffer.byteLength(name), 106);
  assert.ok(name.startsWith('projects/'));
  return Buffer.concat([Buffer.from([(1 << 3) | 5, 106]), Buffer.from(name)]);
}
/** An orders document whose full name is exactly 106 bytes. */
const allowed106 = (() => {
  const prefix = docName('orders/');
  return prefix + 'x'.repeat(106 - prefix.length);
})();

/** The outcome the engine should give each crafted request: refused before Firestore sees it. */
function refused(error: grpc.ServiceError | null): void {
  assert.ok(error !== null, 'the crafted request was served');
  assert.ok(error.code === INVALID_ARGUMENT || error.code === PERMISSION_DENIED, `${error.code}: ${error.details}`);
}

describe('meshgate authorizes what Firestore executes: protobuf parser differentials (official emulator)', { skip: FIRESTORE_SKIP }, () => {
  let fx: FirestoreFixture;
  let raw: RawFirestore;
  const listenMetadata = () => {
    const metadata = new grpc.Metadata();
    metadata.set('google-cloud-resource-prefix', DATABASE);
    return metadata;
  };

  before(async () => {
    fx = await startFirestoreFixture({ name: 'fsparse', project: PROJECT, workloads: FIRESTORE_WORKLOADS, policy: FIRESTORE_POLICY });
    const ssl = fx.harness.ssl('orders');
    raw = rawFirestore(`127.0.0.1:${fx.port}`, grpc.credentials.createSsl(ssl.ca, ssl.key, ssl.cert));
    fx.onStop(() => raw.close());
  });

  after(async () => {
    await fx?.stop();
  });

  beforeEach(async () => {
    await fx.reset();
    await fx.direct.doc('orders/o1').set({ total: 10 });
    await fx.direct.doc('users/u1').set({ ssn: '078-05-1120' });
  });

  const usersU1 = async () => (await fx.direct.doc('users/u1').get()).data();

  /** Rejection or answer of a unary call, as one value. */
  const attempt = (promise: Promise<Buffer>) =>
    promise.then(
      (response) => ({ response, error: null }),
      (error: grpc.ServiceError) => ({ response: null, error }),
    );

  describe('controls: the same requests, honestly encoded', () => {
    test('GetDocument of users/u1 is denied; of orders/o1 served', async () => {
      const denied = await attempt(raw.unary('GetDocument', encodeMessage('GetDocumentRequest', { name: docName('users/u1') })));
      assert.equal(denied.error?.code, PERMISSION_DENIED);
      const served = decodeMessage<{ name: string }>('Document', await raw.unary('GetDocument', encodeMessage('GetDocumentRequest', { name: docName('orders/o1') })));
      assert.equal(served.name, docName('orders/o1'));
    });

    test('Listen on orders/o1 streams orders/o1 only', async () => {
      const body = Buffer.concat([field(1, DATABASE), field(2, Buffer.concat([field(3, field(2, docName('orders/o1'))), varintField(5, 1)]))]);
      const { messages, error } = await raw.listen(body, listenMetadata(), 700);
      assert.equal(error, null);
      const names = messages.map((m) => decodeMessage<{ documentChange?: { document: { name: string } } }>('ListenResponse', m).documentChange?.document.name).filter((n) => n !== undefined);
      assert.deepEqual(names, [docName('orders/o1')]);
    });
  });

  test(
    'wire type: GetDocument whose name is users/u1 to Firestore and orders/… to meshgate is refused',
    async () => {
      const body = Buffer.concat([field(1, docName('users/u1')), hiddenName(allowed106)]);
      const mark = await fx.mark();
      const outcome = await attempt(raw.unary('GetDocument', body));
      const leaked = outcome.response === null ? null : decodeMessage<{ name: string }>('Document', outcome.response).name;
      assert.equal(leaked, null, `Firestore returned ${leaked}`);
      refused(outcome.error);
      const [event] = await waitForRpc(fx, mark, 'GetDocument');
      assert.equal(event?.decision, 'deny');
    },
  );

  test(
    'wire type: a Commit that writes users/u1 while meshgate sees orders/… is refused and writes nothing',
    async () => {
      const document = Buffer.concat([field(1, docName('users/u1')), hiddenName(allowed106), field(2, Buffer.concat([field(1, 'ssn'), field(2, field(17, 'overwritten'))]))]);
      const body = Buffer.concat([field(1, DATABASE), field(2, field(1, document))]);
      const outcome = await attempt(raw.unary('Commit', body));
      assert.deepEqual(await usersU1(), { ssn: '078-05-1120' }, 'users/u1 was overwritten through meshgate');
      refused(outcome.error);
    },
  );

  test(
    'oneof Write: update{name: orders/o1} followed by delete: users/u1 is refused and deletes nothing',
    async () => {
      const write = Buffer.concat([field(1, field(1, docName('orders/o1'))), field(2, docName('users/u1'))]);
      const body = Buffer.concat([field(1, DATABASE), field(2, write)]);
      const mark = await fx.mark();
      const outcome = await attempt(raw.unary('Commit', body));
      assert.deepEqual(await usersU1(), { ssn: '078-05-1120' }, 'users/u1 was deleted through meshgate');
      refused(outcome.error);
      const [event] = await waitForRpc(fx, mark, 'Commit');
      assert.equal(event?.decision, 'deny');
    },
  );

  test(
    'oneof Target: documents{orders/o1} followed by query{from users} is refused and streams no users document',
    async () => {
      const target = Buffer.concat([
        field(3, field(2, docName('orders/o1'))),
        field(2, Buffer.concat([field(1, `${DATABASE}/documents`), field(2, field(2, field(2, 'users')))])),
        varintField(5, 1),
      ]);
      const { messages, error } = await raw.listen(Buffer.concat([field(1, DATABASE), field(2, target)]), listenMetadata(), 700);
      const names = messages.map((m) => decodeMessage<{ documentChange?: { document: { name: string } } }>('ListenResponse', m).documentChange?.document.name).filter((n) => n !== undefined);
      assert.deepEqual(names.filter((n) => n.includes('/users/')), [], `streamed ${names.join(', ')}`);
      refused(error);
    },
  );

  test(
    'merge: Target.documents twice (users/u1, then orders/o1) is refused and streams no users document',
    async () => {
      const target = Buffer.concat([field(3, field(2, docName('users/u1'))), field(3, field(2, docName('orders/o1'))), varintField(5, 1)]);
      const { messages, error } = await raw.listen(Buffer.concat([field(1, DATABASE), field(2, target)]), listenMetadata(), 700);
      const names = messages.map((m) => decodeMessage<{ documentChange?: { document: { name: string } } }>('ListenResponse', m).documentChange?.document.name).filter((n) => n !== undefined);
      assert.deepEqual(names.filter((n) => n.includes('/users/')), [], `streamed ${names.join(', ')}`);
      refused(error);
    },
  );
});
