/**
 * The HTTP/2 front door with a real gRPC client (@grpc/grpc-js): identity from the SVID,
 * from XFCC only when the TCP peer is a trusted hop, XFCC stripped from anyone else, and
 * the audit event saying which. The engine behind it here answers with what it was told.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as http2Connect, constants } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { RpcEvent } from '../../../src/audit/types.ts';
import { initCa, issueServerCert, issueSvid } from '../../../src/identity/ca.ts';
import { createIdentityResolver } from '../../../src/identity/resolve.ts';
import { watchTlsMaterial, type TlsMaterial } from '../../../src/identity/tls-material.ts';
import { silentLogger } from '../../../src/log.ts';
import { AuditRecorder } from '../../../src/audit/recorder.ts';
import { rpcFacts } from '../../../src/transport/grpc/rpc-facts.ts';
import { memoryAuditSink } from '../../helpers/audit.ts';
import { GrpcFrontDoor, type GrpcCall } from '../../../src/transport/grpc/front-door.ts';
import { makeTempDir } from '../../helpers/certs.ts';
import { cleanup } from '../../helpers/cleanup.ts';

const TD = 'test.meshgate.local';
const ORDERS = `spiffe://${TD}/ns/shop/sa/orders`;
const SPOOFED = `spiffe://${TD}/ns/prod/sa/admin`;
const HASH = 'a'.repeat(64);
const xfccFor = (uri: string) => `By=spiffe://${TD}/ns/db/sa/meshgate;Hash=${HASH};URI=${uri}`;

interface Answer {
  readonly spiffeId: string;
  readonly authMethod: string;
  readonly sawXfcc: boolean;
}

/** Stands in for an engine: answers one message naming the caller, and audits the call. */
function echoEngine(events: RpcEvent[]) {
  const audit = new AuditRecorder(memoryAuditSink(events));
  return {
    onCall(call: GrpcCall) {
      const body = Buffer.from(JSON.stringify({ spiffeId: call.identity.spiffeId, authMethod: call.identity.authMethod, sawXfcc: 'x-forwarded-client-cert' in call.headers }));
      const frame = Buffer.alloc(5 + body.length);
      frame.writeUInt32BE(body.length, 1);
      body.copy(frame, 5);
      call.stream.respond({ [constants.HTTP2_HEADER_STATUS]: 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      call.stream.on('wantTrailers', () => call.stream.sendTrailers({ 'grpc-status': '0' }));
      call.stream.end(frame);
      audit.rpc(
        rpcFacts({ engine: 'firestore', sessionId: 't', peer: call.peer, identity: call.identity, xfcc: call.xfcc, method: call.method, operation: null, paths: [], decision: 'allow', rule: null, reason: 'test engine', traceId: '0'.repeat(32), error: null, documents: 0, startedAt: call.startedAt }),
      );
    },
    onRefused(refusal: { method: string; error: import('../../../src/errors/index.ts').MeshgateError; xfcc: RpcEvent['xfcc']; peer: RpcEvent['peer']; startedAt: bigint }) {
      audit.rpc(
        rpcFacts({ engine: 'firestore', sessionId: 't', peer: refusal.peer, identity: null, xfcc: refusal.xfcc, method: refusal.method, operation: null, paths: [], decision: 'deny', rule: null, reason: refusal.error.message, traceId: '0'.repeat(32), error: refusal.error, documents: 0, startedAt: refusal.startedAt }),
      );
    },
  };
}

const passthrough = (b: Buffer) => b;
const EchoClient = grpc.makeGenericClientConstructor(
  { Who: { path: '/test.Echo/Who', requestStream: false, responseStream: false, requestSerialize: passthrough, requestDeserialize: passthrough, responseSerialize: passthrough, responseDeserialize: passthrough } },
  'Echo',
);

function who(client: grpc.Client, metadata: grpc.Metadata): Promise<Answer> {
  return new Promise((resolve, reject) => {
    (client as unknown as { Who: (req: Buffer, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: Buffer) => void) => void }).Who(Buffer.alloc(0), metadata, (error, response) => {
      if (error !== null) reject(error);
      else resolve(JSON.parse(response!.toString('utf8')) as Answer);
    });
  });
}

function withXfcc(value: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('x-forwarded-client-cert', value);
  return metadata;
}

describe('gRPC front door: identity from SVID, token or trusted XFCC', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let material: TlsMaterial;
  let client: { cert: Buffer; key: Buffer; ca: Buffer };
  const doors: GrpcFrontDoor[] = [];
  const clients: grpc.Client[] = [];

  async function open(options: { tls: boolean; trustedHops: string[] }) {
    const events: RpcEvent[] = [];
    const door = new GrpcFrontDoor({
      tls: options.tls ? material : null,
      identity: createIdentityResolver({ trustDomains: [TD] }),
      trustedHops: options.trustedHops,
      log: silentLogger,
      ...echoEngine(events),
    });
    doors.push(door);
    const { port } = await door.listen('127.0.0.1', 0);
    return { port, events };
  }

  function grpcClient(port: number, tls: boolean, withCert = true): grpc.Client {
    const credentials = tls
      ? withCert
        ? grpc.credentials.createSsl(client.ca, client.key, client.cert)
        : grpc.credentials.createSsl(client.ca)
      : grpc.credentials.createInsecure();
    const c = new EchoClient(`127.0.0.1:${port}`, credentials, { 'grpc.ssl_target_name_override': 'localhost' });
    clients.push(c);
    return c;
  }

  before(async () => {
    tmp = await makeTempDir('meshgate-frontdoor-');
    const caDir = join(tmp.dir, 'ca');
    await initCa({ dir: caDir, trustDomain: TD });
    const server = await issueServerCert({ caDir, outDir: join(tmp.dir, 'server'), ttlSeconds: 3600 });
    const svid = await issueSvid({ caDir, spiffeId: ORDERS, outDir: join(tmp.dir, 'clients'), name: 'orders', ttlSeconds: 3600 });
    client = { cert: await readFile(svid.certPath), key: await readFile(svid.keyPath), ca: await readFile(svid.bundlePath) };
    material = await watchTlsMaterial({ certFile: server.certPath, keyFile: server.keyPath, bundleFiles: [join(caDir, 'bundle.pem')], watch: false });
  });

  after(async () => {
    await cleanup(
      async () => {
        for (const c of clients) c.close();
      },
      async () => {
        for (const door of doors) await door.close();
      },
      () => material?.close(),
      () => tmp?.cleanup(),
    );
  });

  test('mTLS: the SVID is the identity', async () => {
    const { port, events } = await open({ tls: true, trustedHops: [] });
    const answer = await who(grpcClient(port, true), new grpc.Metadata());
    assert.deepEqual(answer, { spiffeId: ORDERS, authMethod: 'mtls', sawXfcc: false });
    assert.equal(events[0]?.xfcc, null);
  });

  test('mTLS with a spoofed XFCC from an untrusted hop: the certificate wins, the header is stripped and the event says so', async () => {
    const { port, events } = await open({ tls: true, trustedHops: ['127.0.0.6'] });
    const answer = await who(grpcClient(port, true), withXfcc(xfccFor(SPOOFED)));
    assert.deepEqual(answer, { spiffeId: ORDERS, authMethod: 'mtls', sawXfcc: false });
    const event = events[0]!;
    assert.equal(event.identity?.spiffeId, ORDERS);
    assert.equal(event.xfcc?.stripped, true);
    assert.match(event.xfcc!.reason, /not a trusted hop.*stripped and ignored/);
  });

  test('TLS without a certificate and a spoofed XFCC: UNAUTHENTICATED, naming the stripped header', async () => {
    const { port, events } = await open({ tls: true, trustedHops: ['127.0.0.6'] });
    await assert.rejects(who(grpcClient(port, true, false), withXfcc(xfccFor(SPOOFED))), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.UNAUTHENTICATED);
      assert.match(error.details, /\[MG_CLIENT_CERT_MISSING\].*not a trusted hop/);
      return true;
    });
    const event = events[0]!;
    assert.equal(event.decision, 'deny');
    assert.equal(event.identity, null);
    assert.equal(event.status, grpc.status.UNAUTHENTICATED);
    assert.equal(event.xfcc?.stripped, true);
  });

  test('h2c behind a sidecar: XFCC from the trusted hop is the identity, and the engine never sees the header', async () => {
    const { port, events } = await open({ tls: false, trustedHops: ['127.0.0.1'] });
    const answer = await who(grpcClient(port, false), withXfcc(xfccFor(ORDERS)));
    assert.deepEqual(answer, { spiffeId: ORDERS, authMethod: 'xfcc', sawXfcc: false });
    assert.equal(events[0]?.xfcc?.stripped, false);
    assert.match(events[0]!.xfcc!.reason, /trusted hop 127\.0\.0\.1/);
  });

  test('h2c: XFCC from an address that is not the trusted hop is refused, not believed', async () => {
    const { port, events } = await open({ tls: false, trustedHops: ['127.0.0.6'] });
    await assert.rejects(who(grpcClient(port, false), withXfcc(xfccFor(SPOOFED))), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.UNAUTHENTICATED);
      return true;
    });
    assert.equal(events[0]?.decision, 'deny');
    assert.equal(events[0]?.xfcc?.stripped, true);
  });

  test("h2c from Istio's inbound source address 127.0.0.6 is trusted when configured; 127.0.0.1 is not", async () => {
    const { port, events } = await open({ tls: false, trustedHops: ['127.0.0.6/32'] });
    const call = (localAddress: string) =>
      new Promise<{ status: string; body: string }>((resolve, reject) => {
        const session = http2Connect(`http://127.0.0.1:${port}`, { createConnection: () => netConnect({ host: '127.0.0.1', port, localAddress }) });
        session.on('error', reject);
        const req = session.request({ ':method': 'POST', ':path': '/test.Echo/Who', 'content-type': 'application/grpc', te: 'trailers', 'x-forwarded-client-cert': xfccFor(ORDERS) });
        let body = Buffer.alloc(0);
        let status = '';
        req.on('response', (headers) => (status = String(headers['grpc-status'] ?? '')));
        req.on('trailers', (trailers) => (status = String(trailers['grpc-status'] ?? status)));
        req.on('data', (chunk: Buffer) => (body = Buffer.concat([body, chunk])));
        req.on('end', () => {
          session.close();
          resolve({ status, body: body.subarray(5).toString('utf8') });
        });
        req.end(Buffer.alloc(5));
      });
    const fromSidecar = await call('127.0.0.6');
    assert.equal(fromSidecar.status, '0');
    assert.equal((JSON.parse(fromSidecar.body) as Answer).authMethod, 'xfcc');
    const fromElsewhere = await call('127.0.0.1');
    assert.equal(fromElsewhere.status, String(grpc.status.UNAUTHENTICATED));
    assert.deepEqual(
      events.map((e) => [e.decision, e.xfcc?.stripped]),
      [
        ['allow', false],
        ['deny', true],
      ],
    );
  });

  test('a trusted hop sending an unreadable XFCC is refused outright', async () => {
    const { port, events } = await open({ tls: false, trustedHops: ['127.0.0.1'] });
    await assert.rejects(who(grpcClient(port, false), withXfcc('URI=spiffe://other.domain/ns/a/sa/b;Hash=' + HASH)), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.UNAUTHENTICATED);
      assert.match(error.details, /MG_TRUST_DOMAIN_UNTRUSTED/);
      return true;
    });
    assert.equal(events[0]?.decision, 'deny');
  });

  test('a request that is not gRPC gets a clear refusal', async () => {
    const { port } = await open({ tls: false, trustedHops: [] });
    const session = http2Connect(`http://127.0.0.1:${port}`);
    const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      session.on('error', reject);
      const req = session.request({ ':method': 'GET', ':path': '/' });
      req.on('response', (h) => resolve(h as Record<string, unknown>));
      req.end();
    });
    session.close();
    assert.equal(headers['grpc-status'], String(grpc.status.INVALID_ARGUMENT));
    assert.match(decodeURIComponent(String(headers['grpc-message'])), /speaks gRPC over HTTP\/2/);
  });
});
