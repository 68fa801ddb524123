import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_PACKET_PAYLOAD } from '../../../../src/engines/mysql/codec/constants.ts';
import { MAX_DECODED_TEXT_BYTES } from '../../../../src/engines/mysql/codec/commands.ts';
import { encodeMessage, PacketFramer } from '../../../../src/engines/mysql/codec/framer.ts';
import { imitatesTag, spliceTag } from '../../../../src/engines/mysql/sql/tag.ts';

const HEAD = "/*meshgate_identity='spiffe%3A%2F%2Fexample.org%2Fns%2Fshop%2Fsa%2Fapi',meshgate_role='shop_rw'";
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const frameOf = (payload: Buffer, seq = 0) => ({ seq, lastSeq: seq, payload, raw: encodeMessage(payload, seq) });
const query = (sql: string | Buffer) => Buffer.concat([Buffer.from([0x03]), typeof sql === 'string' ? Buffer.from(sql, 'utf8') : sql]);

/** The packet spliceTag built, read back as the server would frame it. */
function reframe(bytes: Buffer) {
  const frames = new PacketFramer(1 << 30).push(bytes);
  assert.equal(frames.length, 1, 'one packet in, one packet out');
  return frames[0]!;
}

describe('spliceTag', () => {
  it('puts the tag in front of the statement, after its leading whitespace', () => {
    const cases: Array<[string, string]> = [
      ['SELECT 1', `${HEAD}*/ SELECT 1`],
      ['  \n\tSELECT 1', `  \n\t${HEAD}*/ SELECT 1`],
      ['CREATE PROCEDURE p() BEGIN SELECT 1; END', `${HEAD}*/ CREATE PROCEDURE p() BEGIN SELECT 1; END`],
      ["SELECT 'x' -- trailing", `${HEAD}*/ SELECT 'x' -- trailing`],
      ['', `${HEAD}*/ `],
      ['   ', `   ${HEAD}*/ `],
      ['*/ SELECT 1 /* open', `${HEAD}*/ */ SELECT 1 /* open`],
    ];
    for (const [sql, expected] of cases) {
      const out = reframe(spliceTag(frameOf(query(sql), 0), HEAD, null)!);
      assert.equal(out.payload[0], 0x03);
      assert.equal(out.payload.toString('utf8', 1), expected, JSON.stringify(sql));
    }
  });

  it('adds a fresh traceparent naming the trace when asked, and keeps the sequence id', () => {
    const out = reframe(spliceTag(frameOf(query('UPDATE t SET a = 1'), 7), HEAD, TRACE)!);
    assert.equal(out.seq, 7);
    assert.match(out.payload.toString('utf8', 1), new RegExp(`^${HEAD.replace(/[*/()]/g, '\\$&')},traceparent='00-${TRACE}-[0-9a-f]{16}-01'\\*/ UPDATE t SET a = 1$`));
  });

  it('never re-encodes the statement: any bytes after the tag are the client\'s own', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 255 }), (bytes, seq) => {
        const payload = query(Buffer.from(bytes));
        const out = reframe(spliceTag(frameOf(payload, seq), HEAD, null)!);
        const comment = Buffer.from(`${HEAD}*/ `, 'latin1');
        let cut = 1;
        while (cut < payload.length && (payload[cut] === 0x20 || (payload[cut]! >= 0x09 && payload[cut]! <= 0x0d))) cut++;
        assert.deepEqual(out.payload, Buffer.concat([payload.subarray(0, cut), comment, payload.subarray(cut)]));
        assert.equal(out.seq, seq);
      }),
      { numRuns: 500 },
    );
  });

  it('leaves a statement that would need a second packet untagged', () => {
    const room = MAX_PACKET_PAYLOAD - `${HEAD}*/ `.length - 1;
    assert.notEqual(spliceTag(frameOf(query('x'.repeat(room - 1))), HEAD, null), null);
    assert.equal(spliceTag(frameOf(query('x'.repeat(room))), HEAD, null), null);
  });
});

describe('imitatesTag', () => {
  it("finds meshgate's keys anywhere, in any case", () => {
    for (const sql of [
      "SELECT 1 /*meshgate_identity='spiffe://x/operator'*/",
      "/*MESHGATE_ROLE='admin'*/ SELECT 1",
      "SELECT 'meshgate_identity'",
      'SELECT `Meshgate_Identity` FROM t',
    ]) {
      assert.equal(imitatesTag(query(sql), sql), true, sql);
    }
    for (const sql of ['SELECT 1', "SELECT 'meshgate identity'", 'SELECT meshgate_version()', "/*traceparent='00-x'*/ SELECT 1"]) {
      assert.equal(imitatesTag(query(sql), sql), false, sql);
    }
  });

  it('searches the bytes of a statement too large to decode whole', () => {
    const tail = "/*meshgate_identity='spiffe://x/operator'*/";
    const big = 'SELECT ' + "'" + 'a'.repeat(MAX_DECODED_TEXT_BYTES + 10) + "' " + tail;
    const decoded = big.slice(0, MAX_DECODED_TEXT_BYTES);
    assert.equal(imitatesTag(query(big), decoded), true);
    const clean = 'SELECT ' + "'" + 'a'.repeat(MAX_DECODED_TEXT_BYTES + 10) + "'";
    assert.equal(imitatesTag(query(clean), clean.slice(0, MAX_DECODED_TEXT_BYTES)), false);
  });
});
