/**
 * Refusals before anyone is identified, on the MySQL port (issue 12, point 8): a TLS 1.0 or
 * 1.1 client, bytes that are not TLS, a client that never finishes its handshake. Each is
 * closed within its bound and audited as a `connection` event with decision `deny`, the
 * peer, a reason and a stable code; a flood from one address is counted, not written line by
 * line. Each test connects from its own loopback address, so the per-address limits of one
 * test do not reach into another's.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Capability } from '../../../src/engines/mysql/codec/constants.ts';
import { encodeMessage } from '../../../src/engines/mysql/codec/framer.ts';
import { encodeHandshakeResponse } from '../../../src/engines/mysql/codec/handshake.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

type Event = Record<string, unknown> & { type: string; peer?: { address: string; port: number }; error?: { code: string; message: string } | null; repeats?: { count: number; since: string } };

const SSL_REQUEST = encodeMessage(
  encodeHandshakeResponse({ capabilities: (Capability.PROTOCOL_41 | Capability.SSL | Capability.SECURE_CONNECTION) >>> 0, mariadbCapabilities: 0, maxPacketSize: 1 << 24, charset: 45, username: '', authResponse: Buffer.alloc(0), database: null, authPlugin: null, attributes: new Map() }).subarray(0, 32),
  1,
);

/** Connects from `from` (a loopback address of the test's own), waits for the greeting. */
async function greeted(port: number, from: string): Promise<Socket> {
  const socket = netConnect({ host: '127.0.0.1', port, localAddress: from });
  socket.on('error', () => {});
  await once(socket, 'data');
  return socket;
}

/** A TLS client limited to `version`, over `socket` (after an SSLRequest) or straight to the port. */
function oldTls(version: 'TLSv1' | 'TLSv1.1', target: { socket: Socket } | { port: number; from: string }): Promise<string> {
  return new Promise((resolve) => {
    const options = { minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0', rejectUnauthorized: false } as const;
    const socket = 'socket' in target ? target.socket : netConnect({ host: '127.0.0.1', port: target.port, localAddress: target.from });
    const client = tlsConnect({ ...options, socket });
    client.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    client.on('secureConnect', () => {
      client.destroy();
      resolve('connected');
    });
  });
}

/** Reads (and drops) what meshgate sends: a socket that is not read never sees the close. */
function closedWithin(socket: Socket, ms: number): Promise<number> {
  socket.resume();
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

async function refusalsFrom(h: Harness, address: string, atLeast = 1): Promise<Event[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const found = ((await h.readAudit()) as Event[]).filter((e) => e.type === 'connection' && e['decision'] === 'deny' && e.peer?.address === address);
    if (found.length >= atLeast || Date.now() > deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('quiet refusals on the MySQL port (starttls)', { skip: missing }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ name: 'quietmy', workloads: STANDARD_WORKLOADS, config: (c) => void (c.listener.timeouts = { handshake: '1s' }) });
  });
  after(async () => {
    await cleanup(() => h?.stop());
  });

  for (const [version, from] of [['TLSv1', '127.0.0.11'], ['TLSv1.1', '127.0.0.12']] as const) {
    it(`a ${version} client is refused in the handshake, and the refusal is audited with its peer and code`, async () => {
      const socket = await greeted(h.port, from);
      socket.write(SSL_REQUEST);
      assert.match(await oldTls(version, { socket }), /PROTOCOL_VERSION|UNSUPPORTED|WRONG_VERSION/);
      const [event, ...more] = await refusalsFrom(h, from);
      assert.deepEqual(more, []);
      assert.equal(event!.error?.code, 'MG_TLS_HANDSHAKE_FAILED');
      assert.match(String(event!['reason']), /TLS 1\.2 and 1\.3/);
      assert.equal(event!['engine'], 'mysql');
      assert.equal(event!['identity'], null);
    });
  }

  it('bytes that are not TLS after the SSLRequest: refused and audited', async () => {
    const socket = await greeted(h.port, '127.0.0.13');
    socket.write(Buffer.concat([SSL_REQUEST, Buffer.from('GET / HTTP/1.1\r\nHost: meshgate\r\n\r\n')]));
    await closedWithin(socket, 3000);
    const [event] = await refusalsFrom(h, '127.0.0.13');
    assert.equal(event?.error?.code, 'MG_TLS_HANDSHAKE_FAILED');
    assert.match(String(event!['reason']), /not a TLS handshake/);
  });

  it('a client that says nothing after the greeting is closed within the handshake bound, and audited', async () => {
    const socket = await greeted(h.port, '127.0.0.14');
    const ms = await closedWithin(socket, 3000);
    assert.ok(ms >= 800, `not before the 1 s bound (${ms} ms)`);
    const [event] = await refusalsFrom(h, '127.0.0.14');
    assert.equal(event?.error?.code, 'MG_CLIENT_TIMEOUT');
    assert.match(String(event!['reason']), /logging in within 1 s \(listener\.timeouts\.handshake\)/);
  });

  it('a client that asks for TLS and never starts it is closed within the bound, and audited', async () => {
    const socket = await greeted(h.port, '127.0.0.15');
    socket.write(SSL_REQUEST);
    await closedWithin(socket, 3000);
    const [event] = await refusalsFrom(h, '127.0.0.15');
    assert.equal(event?.error?.code, 'MG_CLIENT_TIMEOUT');
    assert.match(String(event!['reason']), /TLS handshake/);
  });

  it('a flood from one address: five events a minute one by one, the rest counted in one summary', async () => {
    const from = '127.0.0.16';
    for (let i = 0; i < 30; i++) {
      const socket = await greeted(h.port, from);
      socket.write(SSL_REQUEST);
      await oldTls('TLSv1', { socket });
    }
    const events = await refusalsFrom(h, from, 5);
    assert.equal(events.length, 5, 'written one by one: the first five');
    await h.meshgate.close();
    const all = (await readFile(h.auditFile, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Event)
      .filter((e) => e.type === 'connection' && e.peer?.address === from);
    assert.equal(all.length, 6);
    assert.equal(all[5]!.repeats?.count, 25, 'the other 25, counted');
    assert.equal(all[5]!.error?.code, 'MG_TLS_HANDSHAKE_FAILED');
  });
});

describe('quiet refusals on the MySQL port (TLS from the first byte)', { skip: missing }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ name: 'quietmy1', workloads: STANDARD_WORKLOADS, config: (c) => void ((c.listener.tls.mode = 'first-byte'), (c.listener.timeouts = { handshake: '1s' })) });
  });
  after(async () => {
    await cleanup(() => h?.stop());
  });

  it('a TLS 1.0 client is refused and audited', async () => {
    assert.match(await oldTls('TLSv1', { port: h.port, from: '127.0.0.21' }), /PROTOCOL_VERSION|UNSUPPORTED|WRONG_VERSION/);
    const [event] = await refusalsFrom(h, '127.0.0.21');
    assert.equal(event?.error?.code, 'MG_TLS_HANDSHAKE_FAILED');
  });

  it('garbage in place of a ClientHello is refused and audited', async () => {
    const socket = netConnect({ host: '127.0.0.1', port: h.port, localAddress: '127.0.0.22' });
    socket.on('error', () => {});
    await once(socket, 'connect');
    socket.write(Buffer.alloc(64, 0x41));
    await closedWithin(socket, 3000);
    const [event] = await refusalsFrom(h, '127.0.0.22');
    assert.equal(event?.error?.code, 'MG_TLS_HANDSHAKE_FAILED');
  });
});
