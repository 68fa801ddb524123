import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { changeUserAsReset } from '../../../src/engines/mysql/change-user.ts';
import { decodeChangeUser } from '../../../src/engines/mysql/codec/change-user.ts';
import { Capability, Command } from '../../../src/engines/mysql/codec/constants.ts';
import { encodeMessage } from '../../../src/engines/mysql/codec/framer.ts';
import { PayloadWriter } from '../../../src/engines/mysql/codec/wire.ts';
import type { Identity } from '../../../src/identity/index.ts';

const SECURE = Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH;
const packet = (database: string, charset: number | null, user = 'root', auth = Buffer.alloc(20, 7)) => {
  const w = new PayloadWriter().u8(Command.CHANGE_USER).nulString(user).u8(auth.length).bytes(auth).nulString(database);
  if (charset !== null) w.u16(charset).nulString('mysql_native_password');
  return w.toBuffer();
};
const frameOf = (payload: Buffer, seq = 0) => ({ seq, lastSeq: seq, payload, raw: encodeMessage(payload, seq) });
const CHARSETS = new Map([[45, 'utf8mb4'], [224, 'utf8mb4'], [8, 'latin1']]);
const facts = (authMethod: Identity['authMethod'], database: string | null = 'shop') => ({
  identity: { spiffeId: 'spiffe://t/ns/a/sa/b', authMethod } as Identity,
  capabilities: SECURE,
  loginCharset: 224,
  database,
  charsetOf: (c: number) => CHARSETS.get(c) ?? null,
});

describe('decodeChangeUser', () => {
  it('reads the database and the collation, never the credential', () => {
    assert.deepEqual(decodeChangeUser(packet('shop', 45), SECURE), { database: 'shop', charset: 45, attributes: new Map() });
    assert.deepEqual(decodeChangeUser(packet('', null), SECURE), { database: null, charset: null, attributes: new Map() });
    const attributes = new PayloadWriter().lenencBytes('program_name').lenencBytes('app').toBuffer();
    const withAttributes = Buffer.concat([packet('shop', 45), new PayloadWriter().lenencBytes(attributes).toBuffer()]);
    assert.deepEqual(decodeChangeUser(withAttributes, SECURE | Capability.CONNECT_ATTRS).attributes, new Map([['program_name', 'app']]));
    const unterminated = Buffer.concat([Buffer.from([Command.CHANGE_USER]), Buffer.from('u\0'), Buffer.from([0]), Buffer.from('db')]);
    assert.deepEqual(decodeChangeUser(unterminated, SECURE), { database: 'db', charset: null, attributes: new Map() });
    const oldStyle = Buffer.concat([Buffer.from([Command.CHANGE_USER]), Buffer.from('u\0secret\0shop\0')]);
    assert.deepEqual(decodeChangeUser(oldStyle, 0), { database: 'shop', charset: null, attributes: new Map() });
  });

  it('throws only MG_PACKET_MALFORMED on any bytes a client sends', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.boolean(), (bytes, secure) => {
        try {
          decodeChangeUser(Buffer.concat([Buffer.from([Command.CHANGE_USER]), Buffer.from(bytes)]), secure ? SECURE | Capability.CONNECT_ATTRS : 0);
        } catch (error) {
          assert.equal((error as { code?: string }).code, 'MG_PACKET_MALFORMED');
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('changeUserAsReset', () => {
  it('goes upstream as COM_RESET_CONNECTION, with the client’s sequence id', () => {
    const route = changeUserAsReset(frameOf(packet('shop', 45), 0), facts('mtls'));
    assert.ok('frame' in route);
    assert.deepEqual(route.frame.raw, encodeMessage(Buffer.of(Command.RESET_CONNECTION), 0));
    assert.ok('frame' in changeUserAsReset(frameOf(packet('', 224)), facts('xfcc', null)));
  });

  it('refuses what a reset cannot do, saying what to send instead', () => {
    const refused = (route: ReturnType<typeof changeUserAsReset>, pattern: RegExp) => {
      assert.ok('refusal' in route);
      assert.equal(route.refusal.code, 'MG_COMMAND_FORBIDDEN');
      assert.match(route.refusal.message, pattern);
    };
    refused(changeUserAsReset(frameOf(packet('shop', 224)), facts('jwt')), /token/);
    refused(changeUserAsReset(frameOf(packet('other', 224)), facts('mtls')), /database 'shop'.*COM_INIT_DB/);
    refused(changeUserAsReset(frameOf(packet('', 224)), facts('mtls')), /COM_INIT_DB/);
    refused(changeUserAsReset(frameOf(packet('shop', 8)), facts('mtls')), /utf8mb4.*SET NAMES/);
    refused(changeUserAsReset(frameOf(packet('shop', 999)), facts('mtls')), /SET NAMES/);
  });
});
