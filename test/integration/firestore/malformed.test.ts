/**
 * Bytes no Firestore SDK sends, through a real meshgate in front of Google's official
 * emulator: random payloads behind a valid gRPC prefix, truncated messages, a length over
 * the limit, the compressed flag, a bad flag byte, an unknown method, a request that is not
 * gRPC. Each fails cleanly with a gRPC status and a message naming the problem, the audit
 * records a deny, and the process, the connection and other callers go on. Then requests
 * that are valid protobuf but say two things at once (a oneof twice, a message field twice):
 * meshgate must authorize what Firestore will act on.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as http2Connect, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import type { RpcEvent } from '../../../src/audit/types.ts';
import { FIRESTORE_SKIP, FS_METHOD, principal, spiffe, startFirestoreFixture, waitForRpc, type FirestoreFixture } from '../../helpers/firestore.ts';

const require = createRequire(import.meta.url);
const protosDir = join(dirname(require.resolve('@google-cloud/firestore/package.json')), 'build', 'protos');
const official = protobuf.Root.fromJSON(require(join(protosDir, 'v1.json')) as protobuf.INamespace);

const PROJECT = 'malformed-p';
const DB = `projects/${PROJECT}/databases/(default)`;
const ROOT = `${DB}/documents`;
const doc = (path: string) => `${ROOT}/${path}`;
const LIMIT = 16 * 1024 * 1024; // firestore.maxMessageBytes default

const POLICY = `
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: fs-malformed }
spec:
  action: ALLOW
  rules:
    - id: orders-rw
      from: [{ source: { principals: ["${principal('ns/shop/sa/orders')}"] } }]
      to: [{ firestore: { collections: ["orders/*"], operations: [read, write] } }]
`;

const STATUS = grpc.status;

function encode(type: string, object: Record<string, unknown>): Buffer {
  const T = official.lookupType(`google.firestore.v1.${type}`);
  return Buffer.from(T.encode(T.fromObject(object)).finish());
}

/** Field `number` (length-delimited) around `bytes`: to put a second copy of a field on the wire. */
function field(number: number, bytes: Buffer): Buffer {
  return Buffer.from(protobuf.Writer.create().uint32((number << 3) | 2).bytes(bytes).finish());
}

function frame(payload: Buffer, flag = 0, length = payload.length): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(length, 1);
  return Buffer.concat([head, payload]);
}

function unframe(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let offset = 0;
  while (offset + 5 <= data.length) {
    const length = data.readUInt32BE(offset + 1);
    out.push(data.subarray(offset + 5, offset + 5 + length));
    offset += 5 + length;
  }
  return out;
}

interface Answer {
  /** grpc-status, from a trailers-only response or the trailers; null if none came. */
  readonly status: number | null;
  readonly message: string;
  readonly messages: Buffer[];
  readonly ms: number;
}

/** Random bytes that are not, by chance, an empty or tiny message. */
const RANDOM = Buffer.from('6f3a9c1e55d20b7788aa10fe3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8b9cadbecfd0e1f2', 'hex');

describe('Firestore through meshgate, official emulator', { skip: FIRESTORE_SKIP }, () => {
  let fx: FirestoreFixture;
  let session: ClientHttp2Session;
  let unary: grpc.Client;

  before(async () => {
    fx = await startFirestoreFixture({ name: 'fsmalformed', project: PROJECT, workloads: { orders: spiffe('ns/shop/sa/orders') }, policy: POLICY });
    await fx.direct.doc('orders/o1').set({ n: 1 });
    await fx.direct.doc('secrets/s1').set({ top: 'secret' });
    const ssl = fx.harness.ssl('orders');
    session = http2Connect(`https://127.0.0.1:${fx.port}`, { ca: ssl.ca, key: ssl.key, cert: ssl.cert, checkServerIdentity: () => undefined });
    session.on('error', () => {});
    fx.onStop(() => session.close());
    const Generic = grpc.makeGenericClientConstructor({}, 'Firestore');
    unary = new Generic(`127.0.0.1:${fx.port}`, grpc.credentials.createSsl(ssl.ca, ssl.key, ssl.cert), { 'grpc.ssl_target_name_override': 'localhost' });
    fx.onStop(() => unary.close());
  });

  after(async () => {
    await fx?.stop();
  });

  describe('malformed calls fail cleanly', () => {

    /**
     * One call on the shared raw HTTP/2 connection. Resolves once a grpc-status arrives (then
     * cancels the stream if it is still open), or after `waitMs` with status null; with
     * `collectMs`, keeps reading response messages that long (streams meshgate forwarded).
     */
    function rawCall(method: string, data: Buffer, options: { end?: boolean; headers?: OutgoingHttpHeaders; waitMs?: number; collectMs?: number } = {}): Promise<Answer> {
      const started = Date.now();
      return new Promise((resolve) => {
        const req = session.request({
          ':method': 'POST',
          ':path': `/${method.includes('/') ? method : FS_METHOD(method)}`,
          'content-type': 'application/grpc',
          te: 'trailers',
          // The emulator serves Listen only with the header the SDKs send.
          'google-cloud-resource-prefix': DB,
          ...options.headers,
        });
        const chunks: Buffer[] = [];
        let settled = false;
        const settle = (headers: IncomingHttpHeaders | null) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const raw = headers?.['grpc-status'];
          const message = headers?.['grpc-message'];
          if (!req.closed) req.close();
          resolve({
            status: raw === undefined ? null : Number(raw),
            message: typeof message === 'string' ? decodeURIComponent(message) : '',
            messages: unframe(Buffer.concat(chunks)),
            ms: Date.now() - started,
          });
        };
        const timer = setTimeout(() => settle(null), options.collectMs ?? options.waitMs ?? 5000);
        req.on('response', (headers) => {
          if (headers['grpc-status'] !== undefined) settle(headers);
        });
        req.on('trailers', (trailers) => settle(trailers));
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('error', () => {});
        req.on('close', () => settle(null));
        if (options.end === false) req.write(data);
        else req.end(data);
      });
    }

    /** A unary call with grpc-js (its own connection), the body passed through as bytes. */
    function grpcUnary(method: string, payload: Buffer): Promise<{ code: number; details: string; response?: Buffer }> {
      return new Promise((resolve) => {
        unary.makeUnaryRequest(
          `/${FS_METHOD(method)}`,
          (b: Buffer) => b,
          (b: Buffer) => b,
          payload,
          new grpc.Metadata(),
          { deadline: Date.now() + 10_000 },
          (error, response) => resolve(error === null ? { code: STATUS.OK, details: '', ...(response === undefined ? {} : { response }) } : { code: error.code, details: error.details }),
        );
      });
    }

    /** The deny event of the one call to `method` after `mark`. */
    async function denyEvent(mark: number, method: string, code: string): Promise<RpcEvent> {
      const events = await waitForRpc(fx, mark, method);
      assert.equal(events.length, 1, `one ${method} event: ${JSON.stringify(events)}`);
      const event = events[0]!;
      assert.equal(event.decision, 'deny');
      assert.equal(event.error?.code, code);
      assert.equal(event.identity?.spiffeId, spiffe('ns/shop/sa/orders'));
      return event;
    }

    test('random bytes behind a valid prefix, to GetDocument and to Commit: INVALID_ARGUMENT naming the request type', async () => {
      for (const method of ['GetDocument', 'Commit']) {
        const mark = await fx.mark();
        const answer = await rawCall(method, frame(RANDOM));
        assert.equal(answer.status, STATUS.INVALID_ARGUMENT, `${method}: ${answer.message}`);
        assert.match(answer.message, new RegExp(`^\\[MG_PACKET_MALFORMED\\] .*google\\.firestore\\.v1\\.${method}Request`));
        await denyEvent(mark, method, 'MG_PACKET_MALFORMED');
      }
    });

    test('valid protobuf with a name that is not a Firestore resource name: INVALID_ARGUMENT showing the expected form', async () => {
      const mark = await fx.mark();
      const answer = await rawCall('GetDocument', frame(encode('GetDocumentRequest', { name: 'orders/o1' })));
      assert.equal(answer.status, STATUS.INVALID_ARGUMENT);
      assert.match(answer.message, /\[MG_PACKET_MALFORMED\] GetDocument: name "orders\/o1" is not a Firestore resource name \(projects\/\{project\}\/databases\/\{database\}\/documents\/…\)/);
      await denyEvent(mark, 'GetDocument', 'MG_PACKET_MALFORMED');
    });

    test('a truncated message (the call ends inside it): INVALID_ARGUMENT, nothing forwarded', async () => {
      const whole = frame(encode('GetDocumentRequest', { name: doc('orders/o1') }));
      const mark = await fx.mark();
      const answer = await rawCall('GetDocument', whole.subarray(0, whole.length - 7));
      assert.equal(answer.status, STATUS.INVALID_ARGUMENT);
      assert.match(answer.message, /^\[MG_PACKET_MALFORMED\] GetDocument .*ended/);
      const event = await denyEvent(mark, 'GetDocument', 'MG_PACKET_MALFORMED');
      assert.deepEqual(event.paths, []);
      // A prefix cut short, and no message at all.
      for (const data of [whole.subarray(0, 3), Buffer.alloc(0)]) {
        const again = await rawCall('GetDocument', data);
        assert.equal(again.status, STATUS.INVALID_ARGUMENT);
        assert.match(again.message, /needs a request message/);
      }
    });

    test('a length prefix over the limit: RESOURCE_EXHAUSTED naming the limit, from the prefix alone, with or without END_STREAM', async () => {
      const mark = await fx.mark();
      const ended = await rawCall('GetDocument', frame(Buffer.alloc(0), 0, LIMIT + 1));
      assert.equal(ended.status, STATUS.RESOURCE_EXHAUSTED);
      assert.match(ended.message, new RegExp(`^\\[MG_PACKET_TOO_LARGE\\] a gRPC message of ${LIMIT + 1} bytes is larger than meshgate accepts \\(${LIMIT}\\)`));
      await denyEvent(mark, 'GetDocument', 'MG_PACKET_TOO_LARGE');
      // The caller keeps its half open, as if the body were still coming: answered anyway, soon.
      const open = await rawCall('Commit', Buffer.concat([frame(Buffer.alloc(0), 0, 0xffffffff), randomBytes(1000)]), { end: false });
      assert.equal(open.status, STATUS.RESOURCE_EXHAUSTED);
      assert.ok(open.ms < 3000, `answered after ${open.ms} ms`);
    });

    test('a compressed message: INVALID_ARGUMENT telling the caller to turn compression off', async () => {
      const mark = await fx.mark();
      const answer = await rawCall('GetDocument', frame(gzipSync(encode('GetDocumentRequest', { name: doc('orders/o1') })), 1), { headers: { 'grpc-encoding': 'gzip' } });
      assert.equal(answer.status, STATUS.INVALID_ARGUMENT);
      assert.match(answer.message, /^\[MG_PACKET_MALFORMED\] .*compressed.*turn request compression off/);
      await denyEvent(mark, 'GetDocument', 'MG_PACKET_MALFORMED');
    });

    test('a flag byte that is neither 0 nor 1: INVALID_ARGUMENT', async () => {
      const mark = await fx.mark();
      const answer = await rawCall('GetDocument', frame(encode('GetDocumentRequest', { name: doc('orders/o1') }), 0x80));
      assert.equal(answer.status, STATUS.INVALID_ARGUMENT);
      assert.match(answer.message, /^\[MG_PACKET_MALFORMED\] a gRPC message starts with flag byte 0x80/);
      await denyEvent(mark, 'GetDocument', 'MG_PACKET_MALFORMED');
    });

    test('random bytes on a streaming call (Listen, Write): the status comes in trailers and the stream ends', async () => {
      for (const method of ['Listen', 'Write']) {
        const mark = await fx.mark();
        const answer = await rawCall(method, frame(RANDOM), { end: false });
        assert.equal(answer.status, STATUS.INVALID_ARGUMENT, `${method}: ${answer.message}`);
        assert.match(answer.message, /^\[MG_PACKET_MALFORMED\]/);
        await denyEvent(mark, method, 'MG_PACKET_MALFORMED');
      }
    });

    test('an unknown method (ExecutePipeline): PERMISSION_DENIED naming what meshgate serves, raw and from grpc-js', async () => {
      const method = 'google.firestore.v1.Firestore/ExecutePipeline';
      const mark = await fx.mark();
      const answer = await rawCall(method, frame(encode('GetDocumentRequest', { name: doc('orders/o1') })));
      assert.equal(answer.status, STATUS.PERMISSION_DENIED);
      assert.match(answer.message, /^\[MG_COMMAND_FORBIDDEN\] meshgate does not serve google\.firestore\.v1\.Firestore\/ExecutePipeline; it serves the google\.firestore\.v1\.Firestore methods/);
      await denyEvent(mark, 'ExecutePipeline', 'MG_COMMAND_FORBIDDEN');
      const viaGrpcJs = await grpcUnary('ExecutePipeline', RANDOM);
      assert.equal(viaGrpcJs.code, STATUS.PERMISSION_DENIED, viaGrpcJs.details);
      assert.match(viaGrpcJs.details, /^\[MG_COMMAND_FORBIDDEN\]/);
      const other = await rawCall('google.datastore.v1.Datastore/Lookup', frame(RANDOM));
      assert.equal(other.status, STATUS.PERMISSION_DENIED);
    });

    test('a request that is not gRPC (wrong content-type): INVALID_ARGUMENT, audited without running the engine', async () => {
      const mark = await fx.mark();
      const answer = await rawCall('GetDocument', Buffer.from('{"name":"x"}'), { headers: { 'content-type': 'application/json' } });
      assert.equal(answer.status, STATUS.INVALID_ARGUMENT);
      assert.match(answer.message, /^\[MG_PACKET_MALFORMED\] this port speaks gRPC/);
      const events = await waitForRpc(fx, mark, 'GetDocument');
      assert.equal(events[0]?.decision, 'deny');
    });

    test('a well-formed request for another project: PERMISSION_DENIED', async () => {
      const mark = await fx.mark();
      const answer = await rawCall('GetDocument', frame(encode('GetDocumentRequest', { name: 'projects/elsewhere/databases/(default)/documents/orders/o1' })));
      assert.equal(answer.status, STATUS.PERMISSION_DENIED);
      assert.match(answer.message, new RegExp(`serves Firestore project '${PROJECT}', not 'elsewhere'`));
      await denyEvent(mark, 'GetDocument', 'MG_POLICY_DENIED');
    });

    test('random payloads and random framing (fast-check, 50 runs each, one connection each) while an SDK client keeps reading on another', async () => {
      const sdk = fx.client('orders');
      const mark = await fx.mark();
      let reads = 0;
      let failures: unknown[] = [];
      let running = true;
      const background = (async () => {
        while (running) {
          try {
            const snapshot = await sdk.doc('orders/o1').get();
            assert.equal(snapshot.get('n'), 1);
            reads++;
          } catch (error) {
            failures.push(error);
          }
        }
      })();
      const UNARY = ['GetDocument', 'Commit', 'BatchWrite', 'BeginTransaction', 'Rollback', 'ListDocuments', 'CreateDocument', 'UpdateDocument', 'DeleteDocument', 'ListCollectionIds', 'PartitionQuery'];
      try {
        // Payloads behind a valid prefix (grpc-js frames them), over one grpc-js connection.
        await fc.assert(
          fc.asyncProperty(fc.constantFrom(...UNARY), fc.uint8Array({ minLength: 0, maxLength: 600 }), async (method, payload) => {
            const answer = await grpcUnary(method, Buffer.from(payload));
            assert.ok(
              answer.code === STATUS.INVALID_ARGUMENT || answer.code === STATUS.PERMISSION_DENIED,
              `${method} ${Buffer.from(payload).toString('hex')}: ${answer.code} ${answer.details}`,
            );
            assert.match(answer.details, /^\[MG_[A-Z_]+\] \S/);
          }),
          { numRuns: 50 },
        );
        // Whole DATA payloads, prefix included, over the raw HTTP/2 connection.
        await fc.assert(
          fc.asyncProperty(fc.constantFrom(...UNARY, 'RunQuery', 'BatchGetDocuments'), fc.uint8Array({ minLength: 0, maxLength: 300 }), async (method, bytes) => {
            const answer = await rawCall(method, Buffer.from(bytes));
            assert.ok(
              answer.status === STATUS.INVALID_ARGUMENT || answer.status === STATUS.PERMISSION_DENIED || answer.status === STATUS.RESOURCE_EXHAUSTED,
              `${method} ${Buffer.from(bytes).toString('hex')}: ${answer.status} ${answer.message}`,
            );
            assert.match(answer.message, /^\[MG_[A-Z_]+\] \S/);
          }),
          { numRuns: 50 },
        );
      } finally {
        running = false;
        await background;
      }
      assert.deepEqual(failures, []);
      assert.ok(reads > 0);
      const events = (await fx.rpcSince(mark)).filter((e) => e.identity?.spiffeId === spiffe('ns/shop/sa/orders'));
      const denied = events.filter((e) => e.decision === 'deny');
      assert.ok(denied.length >= 100, `${denied.length} deny events for 100 malformed calls`);
      assert.ok(denied.every((e) => e.error !== null && /^MG_/.test(String(e.error.code))));
      assert.equal(events.filter((e) => e.decision === 'allow' && e.method === FS_METHOD('BatchGetDocuments')).length, reads);
      failures = [];
    });

    test('afterwards: both connections still serve valid calls, and a new SDK client on another connection reads', async () => {
      const valid = frame(encode('GetDocumentRequest', { name: doc('orders/o1') }));
      const raw = await rawCall('GetDocument', valid);
      assert.equal(raw.status, STATUS.OK, raw.message);
      assert.equal(raw.messages.length, 1);
      const viaGrpcJs = await grpcUnary('GetDocument', valid.subarray(5));
      assert.equal(viaGrpcJs.code, STATUS.OK, viaGrpcJs.details);
      const snapshot = await fx.client('orders').doc('orders/o1').get();
      assert.equal(snapshot.get('n'), 1);
    });
  });

  describe('one request saying two things at once', () => {
    async function seed(): Promise<void> {
      await fx.direct.doc('orders/o1').set({ n: 1 });
      await fx.direct.doc('secrets/s1').set({ top: 'secret' });
    }

    /** A call that keeps its half open (streams), read for `ms`, then cancelled. */
    function stream(method: string, data: Buffer, ms: number, end = false): Promise<{ status: number | null; message: string; messages: Buffer[] }> {
      return new Promise((resolve) => {
        const req = session.request({ ':method': 'POST', ':path': `/${FS_METHOD(method)}`, 'content-type': 'application/grpc', te: 'trailers', 'google-cloud-resource-prefix': DB });
        const chunks: Buffer[] = [];
        let status: number | null = null;
        let message = '';
        const onStatus = (headers: IncomingHttpHeaders) => {
          if (headers['grpc-status'] !== undefined) status = Number(headers['grpc-status']);
          if (typeof headers['grpc-message'] === 'string') message = decodeURIComponent(headers['grpc-message']);
        };
        req.on('response', onStatus);
        req.on('trailers', onStatus);
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('error', () => {});
        const done = () => {
          clearTimeout(timer);
          if (!req.closed) req.close();
          resolve({ status, message, messages: unframe(Buffer.concat(chunks)) });
        };
        const timer = setTimeout(done, ms);
        req.on('close', done);
        if (end) req.end(data);
        else req.write(data);
      });
    }

    function listenedNames(messages: readonly Buffer[]): string[] {
      const ListenResponse = official.lookupType('google.firestore.v1.ListenResponse');
      return messages.flatMap((m) => {
        const decoded = ListenResponse.toObject(ListenResponse.decode(m)) as { documentChange?: { document?: { name?: string } } };
        const name = decoded.documentChange?.document?.name;
        return name === undefined ? [] : [name.slice(ROOT.length + 1)];
      });
    }

    test('a valid Listen on an allowed document works over the raw connection (the baseline for the cases below)', async () => {
      await seed();
      const answer = await stream('Listen', frame(encode('ListenRequest', { database: DB, addTarget: { targetId: 1, documents: { documents: [doc('orders/o1')] } } })), 1500);
      assert.deepEqual(listenedNames(answer.messages), ['orders/o1']);
    });

    test(
      'Commit with a Write naming an allowed document in `update` and a forbidden one in `delete`: refused, and the forbidden document survives',
      async () => {
        await seed();
        const write = Buffer.concat([encode('Write', { update: { name: doc('orders/o1'), fields: { n: { integerValue: 2 } } } }), encode('Write', { delete: doc('secrets/s1') })]);
        const mark = await fx.mark();
        const answer = await stream('Commit', frame(Buffer.concat([encode('CommitRequest', { database: DB }), field(2, write)])), 5000, true);
        const survived = (await fx.direct.doc('secrets/s1').get()).exists;
        const events = await waitForRpc(fx, mark, 'Commit');
        assert.ok(survived, `secrets/s1 was deleted by a workload allowed only orders/*; meshgate answered ${answer.status} and audited paths ${JSON.stringify(events[0]?.paths)}`);
        assert.notEqual(answer.status, STATUS.OK);
      },
    );

    test(
      'Listen with add_target twice (Firestore merges them): no forbidden document reaches the caller',
      async () => {
        await seed();
        const payload = Buffer.concat([
          encode('ListenRequest', { database: DB, addTarget: { targetId: 1, documents: { documents: [doc('secrets/s1')] } } }),
          encode('ListenRequest', { addTarget: { documents: { documents: [doc('orders/o1')] } } }),
        ]);
        const answer = await stream('Listen', frame(payload), 1500);
        assert.ok(!listenedNames(answer.messages).includes('secrets/s1'), `received ${JSON.stringify(listenedNames(answer.messages))}`);
      },
    );

    test(
      'Listen with a target naming documents, then a query (oneof: the query wins): no forbidden document reaches the caller',
      async () => {
        await seed();
        const target = Buffer.concat([
          encode('Target', { targetId: 1, documents: { documents: [doc('orders/o1')] } }),
          encode('Target', { query: { parent: ROOT, structuredQuery: { from: [{ collectionId: 'secrets' }] } } }),
        ]);
        const answer = await stream('Listen', frame(Buffer.concat([encode('ListenRequest', { database: DB }), field(2, target)])), 1500);
        assert.ok(!listenedNames(answer.messages).includes('secrets/s1'), `received ${JSON.stringify(listenedNames(answer.messages))}`);
      },
    );

    test(
      'a request for this project whose documents name another project: PERMISSION_DENIED, like a request naming that project outright',
      async () => {
        await seed();
        const elsewhere = (path: string) => `projects/elsewhere/databases/(default)/documents/${path}`;
        const commit = await stream('Commit', frame(encode('CommitRequest', { database: DB, writes: [{ update: { name: elsewhere('orders/o1'), fields: { n: { integerValue: 9 } } } }] })), 5000, true);
        assert.equal(commit.status, STATUS.PERMISSION_DENIED, `Commit answered ${commit.status} ${commit.message}`);
        const get = await stream('BatchGetDocuments', frame(encode('BatchGetDocumentsRequest', { database: DB, documents: [elsewhere('orders/o1')] })), 5000, true);
        assert.equal(get.status, STATUS.PERMISSION_DENIED, `BatchGetDocuments answered ${get.status} ${get.message}`);
      },
    );

    test('RunQuery with structured_query twice (Firestore merges `from`): refused before it reaches Firestore, and audited', async () => {
      await seed();
      const payload = Buffer.concat([
        encode('RunQueryRequest', { parent: ROOT, structuredQuery: { from: [{ collectionId: 'secrets' }] } }),
        encode('RunQueryRequest', { structuredQuery: { from: [{ collectionId: 'orders' }] } }),
      ]);
      const mark = await fx.mark();
      const answer = await stream('RunQuery', frame(payload), 5000, true);
      assert.equal(answer.status, STATUS.INVALID_ARGUMENT, answer.message);
      assert.match(answer.message, /^\[MG_PACKET_MALFORMED\] .*structured_query more than once/);
      assert.equal(answer.messages.length, 0);
      const events = await waitForRpc(fx, mark, 'RunQuery');
      assert.equal(events[0]?.decision, 'deny');
    });
  });
});
