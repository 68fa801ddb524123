import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Capability } from '../../../src/engines/mysql/codec/constants.ts';
import {
  decodeGreeting,
  decodeHandshakeResponse,
  decodeResponsePrefix,
  encodeGreeting,
  encodeChangeUser,
  encodeHandshakeResponse,
  encodeSslRequest,
  nativePasswordScramble,
  type HandshakeResponse,
} from '../../../src/engines/mysql/codec/handshake.ts';
import { decodeCommand } from '../../../src/engines/mysql/codec/commands.ts';
import { decodeErr, decodeOk, encodeErr, encodeOk } from '../../../src/engines/mysql/codec/generic.ts';
import { isMeshgateError } from '../../../src/errors/index.ts';

const CLIENT_CAPS =
  Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.CONNECT_WITH_DB | Capability.CONNECT_ATTRS | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA;

function expectMalformed(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    assert.ok(isMeshgateError(error), `expected a MeshgateError, got ${String(error)}`);
  }
}

describe('greeting', () => {
  it('round-trips, with MariaDB extended capabilities in the filler', () => {
    const greeting = {
      protocolVersion: 10,
      serverVersion: '5.5.5-10.11.19-MariaDB-0+deb12u1',
      connectionId: 42,
      nonce: Buffer.from('abcdefghijklmnopqrst'),
      capabilities: (CLIENT_CAPS | Capability.SSL) >>> 0,
      mariadbCapabilities: 0x0c,
      charset: 45,
      status: 2,
      authPlugin: 'mysql_native_password',
    };
    assert.deepEqual(decodeGreeting(encodeGreeting(greeting)), greeting);
  });
});

describe('handshake response', () => {
  const response: HandshakeResponse = {
    capabilities: CLIENT_CAPS >>> 0,
    mariadbCapabilities: 4,
    maxPacketSize: 16 * 1024 * 1024,
    charset: 224,
    username: 'orders',
    authResponse: Buffer.alloc(20, 7),
    database: 'shop',
    authPlugin: 'mysql_native_password',
    attributes: new Map([
      ['_client_name', 'mysql2'],
      ['_pid', '123'],
    ]),
  };

  it('round-trips with every optional part', () => {
    assert.deepEqual(decodeHandshakeResponse(encodeHandshakeResponse(response)), response);
  });

  it('reads the SSLRequest prefix', () => {
    const prefix = decodeResponsePrefix(encodeHandshakeResponse(response).subarray(0, 32));
    assert.equal(prefix.capabilities, response.capabilities);
    assert.equal(prefix.charset, 224);
  });

  it('writes the SSLRequest meshgate sends upstream: the 32-byte prefix of its response, SSL set', () => {
    const request = encodeSslRequest({ capabilities: response.capabilities | Capability.SSL, mariadbCapabilities: 4, maxPacketSize: response.maxPacketSize, charset: 224 });
    assert.equal(request.length, 32);
    const full = encodeHandshakeResponse({ ...response, capabilities: (response.capabilities | Capability.SSL) >>> 0 });
    assert.deepEqual(request, full.subarray(0, 32));
    assert.deepEqual(decodeResponsePrefix(request), { capabilities: (response.capabilities | Capability.SSL) >>> 0, mariadbCapabilities: 4, maxPacketSize: response.maxPacketSize, charset: 224 });
  });

  it('ignores the extended-capability bytes from a MySQL-flavoured client', () => {
    const mysqlClient = { ...response, capabilities: (CLIENT_CAPS | Capability.CLIENT_MYSQL) >>> 0, mariadbCapabilities: 0 };
    assert.equal(decodeHandshakeResponse(encodeHandshakeResponse(mysqlClient)).mariadbCapabilities, 0);
  });

  it('refuses a pre-4.1 client', () => {
    const old = Buffer.alloc(40);
    assert.throws(() => decodeHandshakeResponse(old), (e: unknown) => isMeshgateError(e) && e.code === 'MG_PACKET_MALFORMED');
  });

  it('property: every truncation of a valid response fails cleanly or decodes', () => {
    const wire = encodeHandshakeResponse(response);
    for (let length = 0; length < wire.length; length++) expectMalformed(() => decodeHandshakeResponse(wire.subarray(0, length)));
  });

  it('property: arbitrary bytes never throw anything but a MeshgateError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, protocol41) => {
        const buf = Buffer.from(bytes);
        if (protocol41 && buf.length >= 4) buf.writeUInt32LE((buf.readUInt32LE(0) | Capability.PROTOCOL_41) >>> 0, 0);
        expectMalformed(() => decodeHandshakeResponse(buf));
        expectMalformed(() => decodeResponsePrefix(buf));
        expectMalformed(() => decodeCommand(buf));
      }),
    );
  });
});

describe('COM_CHANGE_USER', () => {
  it('lays out user, auth response, database, collation, plugin and attributes as MariaDB reads them', () => {
    const packet = encodeChangeUser({
      capabilities: CLIENT_CAPS,
      username: 'mg-a',
      authResponse: Buffer.from([1, 2, 3]),
      database: 'shop',
      charset: 224,
      authPlugin: 'mysql_native_password',
      attributes: new Map([['program_name', 'meshgate-pool']]),
    });
    const expected = Buffer.concat([
      Buffer.from([0x11]),
      Buffer.from('mg-a\0'),
      Buffer.from([3, 1, 2, 3]),
      Buffer.from('shop\0'),
      Buffer.from([224, 0]),
      Buffer.from('mysql_native_password\0'),
      Buffer.from([27, 12]),
      Buffer.from('program_name'),
      Buffer.from([13]),
      Buffer.from('meshgate-pool'),
    ]);
    assert.deepEqual(packet, expected);
  });

  it('sends no database as an empty string, and leaves out what the connection did not negotiate', () => {
    const packet = encodeChangeUser({
      capabilities: Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION,
      username: 'u',
      authResponse: Buffer.alloc(0),
      database: null,
      charset: 33,
      authPlugin: 'mysql_native_password',
      attributes: new Map([['k', 'v']]),
    });
    assert.deepEqual(packet, Buffer.from([0x11, 0x75, 0, 0, 0, 33, 0]));
  });
});

describe('mysql_native_password', () => {
  it('matches the scramble MariaDB expects (known vector)', () => {
    // Computed independently with Python's hashlib:
    // stage1 = sha1("secret"), stage2 = sha1(stage1), token = stage1 XOR sha1(nonce + stage2)
    const nonce = Buffer.from('0123456789abcdefghij');
    const token = nativePasswordScramble('secret', nonce);
    assert.equal(token.toString('hex'), 'f5cac3f3b3df2133feb57db682c71e6ed433a988');
    assert.equal(nativePasswordScramble('', nonce).length, 0);
  });
});

describe('generic packets', () => {
  it('OK and ERR round-trip', () => {
    assert.deepEqual(decodeOk(encodeOk({ affectedRows: 300, lastInsertId: 70000, status: 2, warnings: 1 })), {
      affectedRows: 300,
      lastInsertId: 70000,
      status: 2,
      warnings: 1,
    });
    assert.deepEqual(decodeErr(encodeErr({ code: 1142, sqlState: '42000', message: 'INSERT command denied' })), {
      code: 1142,
      sqlState: '42000',
      message: 'INSERT command denied',
    });
  });
});

describe('commands', () => {
  it('classifies relayed and forbidden commands', () => {
    const query = decodeCommand(Buffer.from('\x03SELECT 1', 'latin1'));
    assert.equal(query.kind, 'relay');
    assert.equal(query.kind === 'relay' && query.text, 'SELECT 1');
    // Relayed as the reset it amounts to (change-user.ts), never as a change of account.
    assert.deepEqual(decodeCommand(Buffer.from([0x11, 0x61, 0])), { kind: 'relay', code: 0x11, name: 'change_user', response: 'single', text: null, statementId: null });
    assert.deepEqual(decodeCommand(Buffer.from([0x08])), { kind: 'forbidden', code: 0x08, name: 'COM_SHUTDOWN' });
    assert.equal(decodeCommand(Buffer.from([0x12])).kind, 'forbidden');
    assert.deepEqual(decodeCommand(Buffer.from([0x01])), { kind: 'quit' });
    const execute = decodeCommand(Buffer.from([0x17, 1, 0, 0, 0, 1, 1, 0, 0, 0]));
    assert.equal(execute.kind === 'relay' && execute.response, 'cursor');
    assert.throws(() => decodeCommand(Buffer.from([0x17, 1])), (e: unknown) => isMeshgateError(e) && e.code === 'MG_PACKET_MALFORMED');
  });
});
