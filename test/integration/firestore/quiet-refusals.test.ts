/**
 * Refusals and bounded waits on the Firestore (gRPC) port (issue 12, point 8). A connection
 * turned away before any call — TLS 1.0/1.1, bytes that are not TLS, no HTTP/2, silence — is
 * closed within firestore.timeouts.handshake and audited as a `connection` event (decision
 * deny, peer, reason, code). A call whose request never ends is closed within
 * firestore.timeouts.request and audited; a connection without calls is closed after
 * firestore.timeouts.idle. Connection-level tests connect from their own loopback address, so
 * the per-address refusal limits of one do not reach into another.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as http2Connect, constants, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { ConnectionEvent } from '../../../src/audit/types.ts';
import { startFirestoreEmulator, type RunningEmulator } from '../../../src/dev/firestore-emulator.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { encodeMessage, FIRESTORE_POLICY, FIRESTORE_SKIP, FS_METHOD, spiffe, startFirestoreFixture, waitForRpc, type FirestoreFixture } from '../../helpers/firestore.ts';

const PROJECT = 'quiet-p';
const DB = `projects/${PROJECT}/databases/(default)`;
const TIMEOUTS = { handshake: '1s', request: '1s', idle: '2s' };

function frame(payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/** Reads (and drops) what the server sends: a socket that is not read never sees the close. */
function closedWithin(socket: { once(event: 'close', listener: () => void): unknown; resume?(): unknown }, ms: number): Promise<number> {
  socket.resume?.();
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

function rawSocket(port: number, from: string): Socket {
  const socket = netConnect({ host: '127.0.0.1', port, localAddress: from });
  socket.on('error', () => {});
  return socket;
}

function tlsTo(port: number, from: string, options: { minVersion?: 'TLSv1' | 'TLSv1.1'; maxVersion?: 'TLSv1' | 'TLSv1.1'; ALPNProtocols?: string[] } = {}): TLSSocket {
  const socket = tlsConnect({ socket: rawSocket(port, from), rejectUnauthorized: false, ciphers: 'DEFAULT@SECLEVEL=0', ...options });
  socket.on('error', () => {});
  return socket;
}

async function connectionRefusals(fx: FirestoreFixture, from: string): Promise<ConnectionEvent[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const found = (await fx.harness.readAudit()).filter((e) => e['type'] === 'connection' && (e['peer'] as { address: string }).address === from) as unknown as ConnectionEvent[];
    if (found.length > 0 || Date.now() > deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('quiet refusals on the Firestore port (mTLS, official emulator)', { skip: FIRESTORE_SKIP }, () => {
  let emulator: RunningEmulator;
  let fx: FirestoreFixture;

  before(async () => {
    emulator = await startFirestoreEmulator({ prefer: 'official' });
    fx = await startFirestoreFixture({ name: 'fsquiet', project: PROJECT, workloads: { orders: spiffe('ns/shop/sa/orders') }, policy: FIRESTORE_POLICY, emulator, config: (c) => void (c.firestore!.timeouts = TIMEOUTS) });
  });
  after(async () => {
    await cleanup(
      () => fx?.stop(),
      () => emulator?.stop(),
    );
  });

  for (const [version, from] of [['TLSv1', '127.0.0.31'], ['TLSv1.1', '127.0.0.32']] as const) {
    test(`a ${version} client is refused and audited with its peer and code`, async () => {
      const socket = tlsTo(fx.port, from, { minVersion: version, maxVersion: version });
      const [error] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
      assert.match(error.code ?? '', /PROTOCOL_VERSION|UNSUPPORTED|WRONG_VERSION/);
      const [event, ...more] = await connectionRefusals(fx, from);
      assert.deepEqual(more, []);
      assert.equal(event!.engine, 'firestore');
      assert.equal(event!.decision, 'deny');
      assert.equal(event!.error?.code, 'MG_TLS_HANDSHAKE_FAILED');
      assert.match(event!.reason, /TLS 1\.2 and 1\.3/);
    });
  }

  test('bytes that are not TLS: refused and audited', async () => {
    const socket = rawSocket(fx.port, '127.0.0.33');
    socket.write('GET / HTTP/1.1\r\nHost: meshgate\r\n\r\n');
    await closedWithin(socket, 3000);
    const [event] = await connectionRefusals(fx, '127.0.0.33');
    assert.equal(event?.error?.code, 'MG_TLS_HANDSHAKE_FAILED');
  });

  test('TLS, then bytes that are not the HTTP/2 preface: refused and audited', async () => {
    const socket = tlsTo(fx.port, '127.0.0.34', { ALPNProtocols: ['h2'] });
    await once(socket, 'secureConnect');
    socket.write('this is not HTTP/2 at all, not even close\r\n\r\n');
    await closedWithin(socket, 3000);
    const [event] = await connectionRefusals(fx, '127.0.0.34');
    assert.equal(event?.error?.code, 'MG_PACKET_MALFORMED');
    assert.match(event!.reason, /HTTP\/2 preface/);
  });

  test('TLS without asking for h2 in ALPN: refused and audited', async () => {
    const socket = tlsTo(fx.port, '127.0.0.35');
    await closedWithin(socket, 3000);
    const [event] = await connectionRefusals(fx, '127.0.0.35');
    assert.equal(event?.error?.code, 'MG_PACKET_MALFORMED');
    assert.match(event!.reason, /ALPN/);
  });

  test('a silent TCP connection is closed within the handshake bound, and audited', async () => {
    const socket = rawSocket(fx.port, '127.0.0.36');
    await once(socket, 'connect');
    const ms = await closedWithin(socket, 3000);
    assert.ok(ms >= 800, `not before the 1 s bound (${ms} ms)`);
    const [event] = await connectionRefusals(fx, '127.0.0.36');
    assert.equal(event?.error?.code, 'MG_CLIENT_TIMEOUT');
    assert.match(event!.reason, /TLS handshake within 1 s \(firestore\.timeouts\.handshake\)/);
  });

  test('TLS done, then silence instead of the HTTP/2 preface: closed within the bound, and audited', async () => {
    const socket = tlsTo(fx.port, '127.0.0.37', { ALPNProtocols: ['h2'] });
    await once(socket, 'secureConnect');
    await closedWithin(socket, 3000);
    const [event] = await connectionRefusals(fx, '127.0.0.37');
    assert.equal(event?.error?.code, 'MG_CLIENT_TIMEOUT');
    assert.match(event!.reason, /HTTP\/2 preface/);
  });

  describe('calls and connections that never finish', () => {
    let session: ClientHttp2Session;
    before(() => {
      const ssl = fx.harness.ssl('orders');
      session = http2Connect(`https://127.0.0.1:${fx.port}`, { ca: ssl.ca, key: ssl.key, cert: ssl.cert, checkServerIdentity: () => undefined });
      session.on('error', () => {});
    });
    after(() => session?.destroy());

    /** Opens a call and sends `first` (or nothing) without ending the request. */
    function halfOpen(s: ClientHttp2Session, method: string, first?: Buffer): { req: ClientHttp2Stream; status: Promise<string | null> } {
      const req = s.request({ ':method': 'POST', ':path': `/${FS_METHOD(method)}`, 'content-type': 'application/grpc', te: 'trailers', 'google-cloud-resource-prefix': DB });
      req.on('error', () => {});
      if (first !== undefined) req.write(frame(first));
      const status = new Promise<string | null>((resolve) => {
        req.on('response', (headers) => headers['grpc-status'] !== undefined && resolve(String(headers['grpc-status'])));
        req.on('trailers', (trailers) => resolve(String(trailers['grpc-status'])));
        req.on('close', () => resolve(null));
      });
      return { req, status };
    }

    for (const method of ['GetDocument', 'Commit', 'Listen'] as const) {
      test(`${method}: headers and never a request: closed within the request bound, INVALID_ARGUMENT, and audited`, async () => {
        const mark = await fx.mark();
        const { req, status } = halfOpen(session, method);
        const ms = await closedWithin(req, 3000);
        assert.ok(ms >= 800, `not before the 1 s bound (${ms} ms)`);
        assert.equal(await status, '3');
        const [event, ...more] = await waitForRpc(fx, mark, method);
        assert.deepEqual(more, []);
        assert.equal(event!.error?.code, 'MG_CLIENT_TIMEOUT');
        assert.match(event!.reason, /firestore\.timeouts\.request/);
      });
    }

    test('GetDocument with its message but no END_STREAM: the same', async () => {
      const mark = await fx.mark();
      const { req, status } = halfOpen(session, 'GetDocument', encodeMessage('GetDocumentRequest', { name: `${DB}/documents/orders/x` }));
      await closedWithin(req, 3000);
      assert.equal(await status, '3');
      assert.equal((await waitForRpc(fx, mark, 'GetDocument'))[0]?.error?.code, 'MG_CLIENT_TIMEOUT');
    });

    test('a Listen that sent its first message stays open past the request bound', async () => {
      const mark = await fx.mark();
      const { req } = halfOpen(session, 'Listen', encodeMessage('ListenRequest', { database: DB, addTarget: { targetId: 1, documents: { documents: [`${DB}/documents/orders/x`] } } }));
      const data = once(req, 'data');
      await data;
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(req.closed, false, 'a listen is long-lived by design');
      req.close(constants.NGHTTP2_CANCEL);
      const [event] = await waitForRpc(fx, mark, 'Listen');
      assert.equal(event?.status, 1, 'ended by its caller, as listens end');
      assert.equal(event?.error?.message, 'the caller cancelled the call', JSON.stringify(event));
    });

    test('a call refused at the door (no certificate) whose caller never ends it is reset within the bound', async () => {
      const ssl = fx.harness.ssl('orders');
      const anonymous = http2Connect(`https://127.0.0.1:${fx.port}`, { ca: ssl.ca, checkServerIdentity: () => undefined });
      anonymous.on('error', () => {});
      try {
        const { req, status } = halfOpen(anonymous, 'GetDocument');
        assert.equal(await status, '16');
        await closedWithin(req, 3000);
      } finally {
        anonymous.destroy();
      }
    });

    test('a connection without calls is closed after the idle bound (GOAWAY), not audited as a refusal', async () => {
      const ssl = fx.harness.ssl('orders');
      const idle = http2Connect(`https://127.0.0.1:${fx.port}`, { ca: ssl.ca, key: ssl.key, cert: ssl.cert, checkServerIdentity: () => undefined });
      idle.on('error', () => {});
      await once(idle, 'remoteSettings');
      const goaway = once(idle, 'goaway');
      const ms = await closedWithin(idle, 5000);
      await goaway;
      assert.ok(ms >= 1500, `after the 2 s idle bound (${ms} ms)`);
    });
  });
});

describe('quiet refusals on the Firestore port (plaintext h2c behind a sidecar, official emulator)', { skip: FIRESTORE_SKIP }, () => {
  let emulator: RunningEmulator;
  let fx: FirestoreFixture;

  before(async () => {
    emulator = await startFirestoreEmulator({ prefer: 'official' });
    fx = await startFirestoreFixture({
      name: 'fsquieth2c',
      project: PROJECT,
      workloads: { orders: spiffe('ns/shop/sa/orders') },
      policy: FIRESTORE_POLICY,
      emulator,
      config: (c) => void ((c.firestore!.tls = 'plaintext'), (c.firestore!.timeouts = TIMEOUTS)),
    });
  });
  after(async () => {
    await cleanup(
      () => fx?.stop(),
      () => emulator?.stop(),
    );
  });

  test('a silent connection is closed within the handshake bound, and audited', async () => {
    const socket = rawSocket(fx.port, '127.0.0.41');
    await once(socket, 'connect');
    await closedWithin(socket, 3000);
    const [event] = await connectionRefusals(fx, '127.0.0.41');
    assert.equal(event?.error?.code, 'MG_CLIENT_TIMEOUT');
    assert.match(event!.reason, /HTTP\/2 preface/);
  });

  test('bytes that are not HTTP/2: refused and audited', async () => {
    const socket = rawSocket(fx.port, '127.0.0.42');
    socket.write('GET / HTTP/1.1\r\nHost: meshgate\r\n\r\n');
    await closedWithin(socket, 3000);
    const [event] = await connectionRefusals(fx, '127.0.0.42');
    assert.equal(event?.error?.code, 'MG_PACKET_MALFORMED');
  });

});
