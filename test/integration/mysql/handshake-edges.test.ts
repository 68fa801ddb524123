/**
 * Connection-phase timing that real clients produce now and then: a TLS ClientHello in the
 * same TCP segment as the SSLRequest, and commands pipelined right behind the login.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { Capability } from '../../../src/engines/mysql/codec/constants.ts';
import { encodeMessage, PacketFramer, type Frame } from '../../../src/engines/mysql/codec/framer.ts';
import { encodeHandshakeResponse } from '../../../src/engines/mysql/codec/handshake.ts';
import { startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

const CAPS = (Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.SSL | Capability.CONNECT_WITH_DB) >>> 0;

function handshakeResponse(database: string, extraCaps = 0): Buffer {
  return encodeHandshakeResponse({
    capabilities: (CAPS | extraCaps) >>> 0,
    mariadbCapabilities: 0,
    maxPacketSize: 1 << 24,
    charset: 45,
    username: 'edge',
    authResponse: Buffer.alloc(0),
    database,
    authPlugin: 'mysql_native_password',
    attributes: new Map(),
  });
}

/** Collects whole MySQL messages from a stream. */
function messages(stream: Socket | TLSSocket): () => Promise<Frame> {
  const framer = new PacketFramer(1 << 20);
  const ready: Frame[] = [];
  const waiting: ((f: Frame) => void)[] = [];
  stream.on('data', (chunk: Buffer) => {
    for (const frame of framer.push(chunk)) {
      const w = waiting.shift();
      if (w) w(frame);
      else ready.push(frame);
    }
  });
  return () => (ready.length > 0 ? Promise.resolve(ready.shift()!) : new Promise((resolve) => waiting.push(resolve)));
}

describe('connection-phase edge cases', { skip: missing }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      name: 'edge',
      workloads: STANDARD_WORKLOADS,
      config: (c) => {
        c.listener.maxClientMessageBytes = 1024 * 1024;
      },
    });
  });
  after(async () => h?.stop());

  it('accepts a ClientHello that arrives with the SSLRequest, and commands pipelined behind the login', async () => {
    const raw = netConnect({ host: '127.0.0.1', port: h.port });
    const [greeting] = (await once(raw, 'data')) as [Buffer];
    assert.equal(greeting[4], 10, 'protocol 10 greeting');
    // Hold the SSLRequest back until the TLS ClientHello is queued too: one segment.
    raw.cork();
    raw.write(encodeMessage(handshakeResponse(h.database).subarray(0, 32), 1));
    const ssl = h.ssl('orders');
    const secure = tlsConnect({ socket: raw, cert: ssl.cert, key: ssl.key, ca: ssl.ca, servername: 'localhost' });
    process.nextTick(() => raw.uncork());
    await once(secure, 'secureConnect');
    const next = messages(secure);
    // Login and a query in one write, as a pipelining client sends them.
    secure.write(Buffer.concat([encodeMessage(handshakeResponse(h.database), 2), encodeMessage(Buffer.from('\x03SELECT 40 + 2', 'latin1'), 0)]));
    const ok = await next();
    assert.equal(ok.payload[0], 0x00, `login answered with OK, got ${ok.payload.toString('latin1')}`);
    const columnCount = await next();
    assert.equal(columnCount.payload[0], 1, 'one column');
    await next(); // column definition
    await next(); // EOF (no DEPRECATE_EOF negotiated)
    const row = await next();
    assert.equal(row.payload.toString('latin1', 1), '42');
    secure.end(encodeMessage(Buffer.from([0x01]), 0));
    await once(secure, 'close');
  });

  it('closes a session whose message exceeds the limit, with MG_PACKET_TOO_LARGE; others go on', async () => {
    const options = { host: '127.0.0.1', port: h.port, user: 'u', database: h.database, ssl: h.ssl('orders') };
    const bystander = await mysql.createConnection(options);
    const offender = await mysql.createConnection(options);
    try {
      await assert.rejects(offender.query(`SELECT '${'x'.repeat(2 * 1024 * 1024)}'`), (e: { message: string }) => /\[MG_PACKET_TOO_LARGE\]/.test(e.message));
      const [rows] = await bystander.query<mysql.RowDataPacket[]>('SELECT 1 AS still_here');
      assert.equal(rows[0]!.still_here, 1);
    } finally {
      offender.destroy();
      await bystander.end();
    }
    const audit = await h.readAudit();
    assert.ok(audit.some((e) => e.type === 'statement' && (e.error as { code?: string } | null)?.code === 'MG_PACKET_TOO_LARGE'));
  });

  for (const deprecateEof of [false, true]) {
    it(`relays COM_FIELD_LIST and the session stays in step (DEPRECATE_EOF=${deprecateEof})`, async () => {
      const extra = deprecateEof ? Capability.DEPRECATE_EOF : 0;
      const raw = netConnect({ host: '127.0.0.1', port: h.port });
      await once(raw, 'data');
      raw.write(encodeMessage(handshakeResponse(h.database, extra).subarray(0, 32), 1));
      const ssl = h.ssl('orders');
      const secure = tlsConnect({ socket: raw, cert: ssl.cert, key: ssl.key, ca: ssl.ca, servername: 'localhost' });
      await once(secure, 'secureConnect');
      const next = messages(secure);
      secure.write(encodeMessage(handshakeResponse(h.database, extra), 2));
      assert.equal((await next()).payload[0], 0x00);
      secure.write(encodeMessage(Buffer.from('\x03CREATE TABLE IF NOT EXISTS fl (a INT, b TEXT)', 'latin1'), 0));
      assert.equal((await next()).payload[0], 0x00);
      // Field list, then a query pipelined behind it: both answers must arrive, in order.
      secure.write(Buffer.concat([encodeMessage(Buffer.from('\x04fl\x00', 'latin1'), 0), encodeMessage(Buffer.from('\x03SELECT 5', 'latin1'), 0)]));
      const definitions: Frame[] = [];
      for (;;) {
        const frame = await next();
        if (frame.payload[0] === 0xfe) break;
        definitions.push(frame);
      }
      assert.equal(definitions.length, 2, 'two column definitions');
      assert.equal((await next()).payload[0], 1, 'then the SELECT result: one column');
      secure.end(encodeMessage(Buffer.from([0x01]), 0));
      await once(secure, 'close');
      const audit = await h.readAudit();
      assert.ok(audit.some((e) => e.type === 'statement' && e.command === 'field_list' && e.statement === 'fl' && e.error === null));
      assert.ok(audit.some((e) => e.type === 'statement' && e.statement === 'SELECT 5' && e.rowsReturned === 1), 'the tracker followed both answers');
    });
  }
});
