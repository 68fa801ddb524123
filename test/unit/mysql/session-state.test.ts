import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { sessionSchemaChange } from '../../../src/engines/mysql/codec/generic.ts';
import { PayloadWriter } from '../../../src/engines/mysql/codec/wire.ts';

/** An OK packet as MariaDB sends it with CLIENT_SESSION_TRACK: info, then the state entries. */
function ok(status: number, entries: Array<[number, Buffer]> | null, info = ''): Buffer {
  const w = new PayloadWriter().u8(0x00).lenenc(0).lenenc(0).u16(status).u16(0).lenencBytes(info);
  if (entries !== null) {
    const state = new PayloadWriter();
    for (const [type, data] of entries) state.u8(type).lenencBytes(data);
    w.lenencBytes(state.toBuffer());
  }
  return w.toBuffer();
}
const schema = (name: string): [number, Buffer] => [0x01, new PayloadWriter().lenencBytes(name).toBuffer()];
const variable = (name: string, value: string): [number, Buffer] => [0x00, new PayloadWriter().lenencBytes(name).lenencBytes(value).toBuffer()];
const CHANGED = 0x4000 | 0x0002;

describe('sessionSchemaChange', () => {
  it('reads the database a USE switched to, among other tracked changes', () => {
    assert.equal(sessionSchemaChange(ok(CHANGED, [schema('shop')])), 'shop');
    assert.equal(sessionSchemaChange(ok(CHANGED, [variable('autocommit', 'ON'), schema('bücher'), variable('time_zone', 'UTC')])), 'bücher');
    assert.equal(sessionSchemaChange(ok(CHANGED, [schema('')])), '', 'the current database was dropped');
  });

  it('says nothing when the packet announces no schema change', () => {
    assert.equal(sessionSchemaChange(ok(0x0002, null)), undefined);
    assert.equal(sessionSchemaChange(ok(CHANGED, [variable('autocommit', 'OFF')])), undefined);
    assert.equal(sessionSchemaChange(Buffer.from([0x00, 0x00, 0x00])), undefined, 'a pre-4.1 short OK');
  });

  it('never reads past the packet: a cut or garbled packet throws MG_PACKET_MALFORMED or answers', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const payload = Buffer.concat([Buffer.from([0x00]), Buffer.from(bytes)]);
        try {
          const result = sessionSchemaChange(payload);
          assert.ok(result === undefined || typeof result === 'string');
        } catch (error) {
          assert.equal((error as { code?: string }).code, 'MG_PACKET_MALFORMED');
        }
      }),
      { numRuns: 2000 },
    );
  });
});
