/**
 * The Firestore listener's front door with a raw grpc-js client, against Google's official
 * emulator: identity from x-forwarded-client-cert in plaintext (sidecar) mode, believed only
 * from a trusted hop and stripped from anyone else; and a listener that keeps serving while
 * a client sends garbage. Requests are google.firestore.v1 messages encoded with protobufjs
 * from the protos the SDK ships.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import type { MeshgateConfigInput } from '../../../src/config/schema.ts';
import { startFirestoreEmulator, type RunningEmulator } from '../../../src/dev/firestore-emulator.ts';
import {
  decodeMessage,
  encodeMessage,
  FIRESTORE_POLICY,
  FIRESTORE_SKIP,
  FIRESTORE_WORKLOADS,
  grpc,
  INVALID_ARGUMENT,
  onlyRpc,
  PERMISSION_DENIED,
  rawFirestore,
  RULE,
  startFirestoreFixture,
  UNAUTHENTICATED,
  type FirestoreFixture,
  type RawFirestore,
} from '../../helpers/firestore.ts';
import { TRUST_DOMAIN } from '../../helpers/meshgate.ts';
import { cleanup } from '../../helpers/cleanup.ts';

const PROJECT = 'mg-it-front-door';
const DATABASE = `projects/${PROJECT}/databases/(default)`;
const docName = (path: string) => `${DATABASE}/documents/${path}`;
const xfccFor = (spiffeId: string) => `By=spiffe://${TRUST_DOMAIN}/ns/db/sa/meshgate;Hash=${'a'.repeat(64)};URI=${spiffeId}`;

function withXfcc(value: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('x-forwarded-client-cert', value);
  return metadata;
}

const getDocument = (path: string) => encodeMessage('GetDocumentRequest', { name: docName(path) });

interface Doc {
  readonly name: string;
  readonly fields?: Record<string, { integerValue?: unknown; stringValue?: string }>;
}

function failsWith(code: number, pattern: RegExp) {
  return (error: grpc.ServiceError) => {
    assert.equal(error.code, code, `${error.code}: ${error.details}`);
    assert.match(error.details, pattern);
    return true;
  };
}

describe('Firestore front door: XFCC in plaintext mode, and garbage (official emulator)', { skip: FIRESTORE_SKIP }, () => {
  let emulator: RunningEmulator;
  const fixtures: FirestoreFixture[] = [];

  before(async () => {
    emulator = await startFirestoreEmulator({ prefer: 'official' });
    await emulator.reset(PROJECT);
  });

  after(async () => {
    await cleanup(
      async () => {
        for (const fixture of fixtures) await fixture.stop();
      },
      () => emulator?.stop(),
    );
  });

  async function fixture(name: string, config?: (input: MeshgateConfigInput) => void) {
    const fx = await startFirestoreFixture({ name, project: PROJECT, workloads: FIRESTORE_WORKLOADS, policy: FIRESTORE_POLICY, emulator, ...(config === undefined ? {} : { config }) });
    fixtures.push(fx);
    return fx;
  }

  describe('plaintext listener, 127.0.0.1 a trusted hop', () => {
    let fx: FirestoreFixture;
    let raw: RawFirestore;

    before(async () => {
      fx = await fixture('fsdoorx', (input) => {
        input.firestore!.tls = 'plaintext';
        input.firestore!.trustedHops = ['127.0.0.1'];
      });
      raw = rawFirestore(`127.0.0.1:${fx.port}`, grpc.credentials.createInsecure());
      fx.onStop(() => raw.close());
      await fx.direct.doc('orders/o1').set({ total: 10 });
    });

    test('XFCC naming orders is the identity: GetDocument of an allowed document answers', async () => {
      const mark = await fx.mark();
      const doc = decodeMessage<Doc>('Document', await raw.unary('GetDocument', getDocument('orders/o1'), withXfcc(xfccFor(FIRESTORE_WORKLOADS.orders))));
      assert.equal(doc.name, docName('orders/o1'));
      assert.equal(Number(doc.fields?.['total']?.integerValue), 10);
      const event = await onlyRpc(fx, mark, 'GetDocument');
      assert.deepEqual(
        [event.decision, event.rule, event.paths, event.status, event.documents, event.identity?.spiffeId, event.identity?.authMethod, event.xfcc?.stripped],
        ['allow', RULE.ordersRw, ['orders/o1'], 0, 1, FIRESTORE_WORKLOADS.orders, 'xfcc', false],
      );
      assert.match(event.xfcc!.reason, /trusted hop 127\.0\.0\.1/);
    });

    test('XFCC naming a caller no rule allows: PERMISSION_DENIED for that identity', async () => {
      const mark = await fx.mark();
      await assert.rejects(raw.unary('GetDocument', getDocument('orders/o1'), withXfcc(xfccFor(FIRESTORE_WORKLOADS.stranger))), failsWith(PERMISSION_DENIED, /\[MG_POLICY_DENIED\].*orders\/o1/));
      const event = await onlyRpc(fx, mark, 'GetDocument');
      assert.deepEqual(
        [event.decision, event.rule, event.paths, event.status, event.documents, event.identity?.spiffeId, event.identity?.authMethod],
        ['deny', null, ['orders/o1'], PERMISSION_DENIED, 0, FIRESTORE_WORKLOADS.stranger, 'xfcc'],
      );
    });

    test('no XFCC and no certificate: UNAUTHENTICATED', async () => {
      const mark = await fx.mark();
      await assert.rejects(raw.unary('GetDocument', getDocument('orders/o1')), failsWith(UNAUTHENTICATED, /\[MG_CLIENT_CERT_MISSING\]/));
      const event = await onlyRpc(fx, mark, 'GetDocument');
      assert.deepEqual([event.decision, event.identity, event.xfcc, event.status, event.paths], ['deny', null, null, UNAUTHENTICATED, []]);
    });
  });

  describe('plaintext listener, 127.0.0.1 not a trusted hop', () => {
    let fx: FirestoreFixture;
    let raw: RawFirestore;

    before(async () => {
      fx = await fixture('fsdooru', (input) => {
        input.firestore!.tls = 'plaintext';
        input.firestore!.trustedHops = ['127.0.0.6'];
      });
      raw = rawFirestore(`127.0.0.1:${fx.port}`, grpc.credentials.createInsecure());
      fx.onStop(() => raw.close());
      await fx.direct.doc('orders/o1').set({ total: 10 });
    });

    test('XFCC is stripped and unread: UNAUTHENTICATED, and the event says it was stripped', async () => {
      const mark = await fx.mark();
      await assert.rejects(raw.unary('GetDocument', getDocument('orders/o1'), withXfcc(xfccFor(FIRESTORE_WORKLOADS.orders))), failsWith(UNAUTHENTICATED, /not a trusted hop/));
      const event = await onlyRpc(fx, mark, 'GetDocument');
      assert.deepEqual([event.decision, event.identity, event.status, event.paths, event.documents, event.xfcc?.stripped], ['deny', null, UNAUTHENTICATED, [], 0, true]);
      assert.match(event.xfcc!.reason, /127\.0\.0\.1.*not a trusted hop.*stripped/);
    });

    test('a write with a spoofed XFCC does not happen', async () => {
      const mark = await fx.mark();
      const commit = encodeMessage('CommitRequest', { database: DATABASE, writes: [{ update: { name: docName('orders/spoofed'), fields: { total: { integerValue: 1 } } } }] });
      await assert.rejects(raw.unary('Commit', commit, withXfcc(xfccFor(FIRESTORE_WORKLOADS.orders))), failsWith(UNAUTHENTICATED, /stripped/));
      assert.equal((await fx.direct.doc('orders/spoofed').get()).exists, false);
      const event = await onlyRpc(fx, mark, 'Commit');
      assert.deepEqual([event.decision, event.status, event.xfcc?.stripped], ['deny', UNAUTHENTICATED, true]);
    });
  });

  describe('garbage from one client does not disturb the listener (mTLS)', () => {
    let fx: FirestoreFixture;
    let raw: RawFirestore;

    before(async () => {
      fx = await fixture('fsdoor');
      const ssl = fx.harness.ssl('orders');
      raw = rawFirestore(`127.0.0.1:${fx.port}`, grpc.credentials.createSsl(ssl.ca, ssl.key, ssl.cert));
      fx.onStop(() => raw.close());
      await fx.direct.doc('orders/o1').set({ total: 10 });
    });

    // An unknown field (15) with wire type 7, which does not exist, then random bytes: no
    // protobuf parser can read it. (meshgate's decoder does not check the wire type of the
    // fields it knows, so garbage that starts with one of those gets further.)
    const garbage = () => Buffer.concat([Buffer.from([0x7f]), randomBytes(200)]);

    test('a malformed GetDocument body is INVALID_ARGUMENT naming the method; the next calls work', async () => {
      const mark = await fx.mark();
      await assert.rejects(raw.unary('GetDocument', garbage()), failsWith(INVALID_ARGUMENT, /\[MG_PACKET_MALFORMED\].*GetDocument/));
      const event = await onlyRpc(fx, mark, 'GetDocument');
      assert.deepEqual([event.decision, event.status, event.error?.code, event.identity?.spiffeId], ['deny', INVALID_ARGUMENT, 'MG_PACKET_MALFORMED', FIRESTORE_WORKLOADS.orders]);
      // Right after: the same connection, and an SDK client of another workload, are served.
      const doc = decodeMessage<Doc>('Document', await raw.unary('GetDocument', getDocument('orders/o1')));
      assert.equal(doc.name, docName('orders/o1'));
      assert.deepEqual((await fx.client('reporter').doc('orders/o1').get()).data(), { total: 10 });
    });

    test('garbage on Commit and on the streaming BatchGetDocuments, many at once: each refused, nothing written, service goes on', async () => {
      const calls = [
        ...Array.from({ length: 10 }, () => raw.unary('Commit', garbage())),
        ...Array.from({ length: 10 }, () => raw.serverStream('BatchGetDocuments', garbage())),
      ];
      const outcomes = await Promise.allSettled(calls);
      for (const outcome of outcomes) {
        assert.equal(outcome.status, 'rejected');
        failsWith(INVALID_ARGUMENT, /\[MG_PACKET_MALFORMED\].*(Commit|BatchGetDocuments)/)((outcome as PromiseRejectedResult).reason as grpc.ServiceError);
      }
      assert.deepEqual((await fx.direct.listCollections()).map((c) => c.id), ['orders']);
      const sdk = fx.client('orders');
      await sdk.doc('orders/o2').set({ total: 2 });
      assert.deepEqual((await fx.direct.doc('orders/o2').get()).data(), { total: 2 });
    });

    test(
      'any random GetDocument body is refused naming the method',
      async () => {
        for (let i = 0; i < 10; i += 1) {
          const body = Buffer.concat([Buffer.from([0x0a, 0x40]), randomBytes(64)]);
          await assert.rejects(raw.unary('GetDocument', body), failsWith(INVALID_ARGUMENT, /\[MG_PACKET_MALFORMED\].*GetDocument/));
        }
      },
    );

    test('a gRPC frame with an invalid flag byte (raw HTTP/2): INVALID_ARGUMENT, and the listener goes on', async () => {
      const ssl = fx.harness.ssl('orders');
      const session: ClientHttp2Session = http2Connect(`https://127.0.0.1:${fx.port}`, { ca: ssl.ca, key: ssl.key, cert: ssl.cert });
      try {
        const answer = await new Promise<{ status: string | undefined; message: string | undefined }>((resolve, reject) => {
          const request = session.request({ ':method': 'POST', ':path': '/google.firestore.v1.Firestore/GetDocument', 'content-type': 'application/grpc', te: 'trailers' });
          let status: string | undefined;
          let message: string | undefined;
          const take = (headers: Record<string, unknown>) => {
            if (headers['grpc-status'] !== undefined) status = String(headers['grpc-status']);
            if (headers['grpc-message'] !== undefined) message = decodeURIComponent(String(headers['grpc-message']));
          };
          request.on('response', take);
          request.on('trailers', take);
          request.on('data', () => {});
          request.on('end', () => resolve({ status, message }));
          request.on('error', reject);
          request.end(Buffer.from([0x07, 0, 0, 0, 2, 0x0a, 0x00]));
        });
        assert.equal(answer.status, String(INVALID_ARGUMENT));
        assert.match(answer.message ?? '', /MG_PACKET_MALFORMED.*flag byte/);
      } finally {
        session.close();
      }
      assert.deepEqual((await fx.client('orders').doc('orders/o1').get()).data(), { total: 10 });
    });
  });
});
