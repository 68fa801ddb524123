import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_PACKET_PAYLOAD } from '../../../../src/engines/mysql/codec/constants.ts';
import { encodeMessage, PacketFramer, type Frame } from '../../../../src/engines/mysql/codec/framer.ts';
import { spliceEdits, type ByteEdit } from '../../../../src/engines/mysql/sql/splice.ts';

const COM_QUERY = 0x03;

function frameOf(statement: Buffer, seq = 0): Frame {
  const payload = Buffer.concat([Buffer.of(COM_QUERY), statement]);
  const raw = encodeMessage(payload, seq);
  const [frame] = new PacketFramer(64 * 1024 * 1024).push(raw);
  return frame!;
}

describe('spliceEdits', () => {
  it('changes only the bytes it is told to, in a statement that is not UTF-8', () => {
    // 'SELECT' in latin1 and SJIS bytes that are no valid UTF-8.
    const statement = Buffer.concat([Buffer.from('CREATE DEFINER=CURRENT_USER VIEW v AS SELECT '), Buffer.from([0x27, 0xe9, 0x83, 0x5c, 0x27])]);
    const out = spliceEdits(frameOf(statement, 5), [
      { at: 6, remove: 0, insert: ' /*x*/' },
      { at: 15, remove: 12, insert: 'CURRENT_ROLE' },
    ])!;
    const expected = Buffer.concat([Buffer.from('CREATE /*x*/ DEFINER=CURRENT_ROLE VIEW v AS SELECT '), Buffer.from([0x27, 0xe9, 0x83, 0x5c, 0x27])]);
    assert.deepEqual(out, encodeMessage(Buffer.concat([Buffer.of(COM_QUERY), expected]), 5));
  });

  it('gives the message unchanged for no edits, and edits at either end', () => {
    const frame = frameOf(Buffer.from('SELECT 1'));
    assert.deepEqual(spliceEdits(frame, []), frame.raw);
    assert.deepEqual(spliceEdits(frame, [{ at: 0, remove: 0, insert: '/*a*/' }, { at: 8, remove: 0, insert: ';' }]), frameOf(Buffer.from('/*a*/SELECT 1;')).raw);
    assert.deepEqual(spliceEdits(frame, [{ at: 0, remove: 8, insert: '' }]), frameOf(Buffer.alloc(0)).raw);
  });

  it('refuses to change how many packets the command takes', () => {
    const nearly = frameOf(Buffer.alloc(MAX_PACKET_PAYLOAD - 3, 0x20));
    assert.notEqual(spliceEdits(nearly, [{ at: 0, remove: 0, insert: 'x' }]), null);
    assert.equal(spliceEdits(nearly, [{ at: 0, remove: 0, insert: 'xy' }]), null);
    const several = frameOf(Buffer.alloc(MAX_PACKET_PAYLOAD + 10, 0x20));
    assert.equal(several.lastSeq, 1);
    assert.equal(spliceEdits(several, [{ at: 0, remove: 1, insert: '' }]), null);
  });

  it('takes only ordered, non-overlapping ASCII edits inside the statement', () => {
    const frame = frameOf(Buffer.from('SELECT 1'));
    const bad: ByteEdit[][] = [
      [{ at: 9, remove: 0, insert: 'x' }],
      [{ at: 7, remove: 2, insert: 'x' }],
      [{ at: -1, remove: 0, insert: 'x' }],
      [{ at: 0.5, remove: 0, insert: 'x' }],
      [{ at: 4, remove: 0, insert: 'x' }, { at: 2, remove: 0, insert: 'y' }],
      [{ at: 2, remove: 3, insert: 'x' }, { at: 4, remove: 0, insert: 'y' }],
      [{ at: 0, remove: 0, insert: 'é' }],
      [{ at: 0, remove: 0, insert: '\0' }],
    ];
    for (const edits of bad) assert.throws(() => spliceEdits(frame, edits), TypeError, JSON.stringify(edits));
  });

  it('agrees with splicing strings, for any bytes and edits', () => {
    const edited = fc
      .tuple(fc.uint8Array({ maxLength: 200 }), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 5 }), fc.string({ unit: 'grapheme-ascii', maxLength: 8 })), { maxLength: 5 }), fc.nat({ max: 255 }))
      .map(([bytes, raw, seq]) => {
        const statement = Buffer.from(bytes);
        const points = raw.map(([at]) => at % (statement.length + 1)).sort((a, b) => a - b);
        const edits: ByteEdit[] = [];
        let from = 0;
        raw.forEach(([, remove, insert], k) => {
          const at = Math.max(points[k]!, from);
          const cut = Math.min(remove, statement.length - at);
          edits.push({ at, remove: cut, insert: insert.replaceAll('\0', ' ') });
          from = at + cut;
        });
        return { statement, edits, seq };
      });
    fc.assert(
      fc.property(edited, ({ statement, edits, seq }) => {
        const out = spliceEdits(frameOf(statement, seq), edits)!;
        let expected = Buffer.alloc(0);
        let from = 0;
        for (const edit of edits) {
          expected = Buffer.concat([expected, statement.subarray(from, edit.at), Buffer.from(edit.insert, 'latin1')]);
          from = edit.at + edit.remove;
        }
        expected = Buffer.concat([expected, statement.subarray(from)]);
        assert.deepEqual(out, encodeMessage(Buffer.concat([Buffer.of(COM_QUERY), expected]), seq));
      }),
    );
  });
});
