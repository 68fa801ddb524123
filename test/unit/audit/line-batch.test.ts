/**
 * The sink seals a batch into one Buffer (LineBatch) instead of one string per line: the
 * bytes must be sealLine's, line for line, whatever the text holds — multi-byte UTF-8, lone
 * surrogates (written as U+FFFD either way), lines longer than the scratch buffer — and each
 * line must open (its hash matches its bytes).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { GENESIS_HASH, LineBatch, openLine, sealLine } from '../../../src/audit/chain.ts';

const body = fc.tuple(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'binary', minLength: 3000, maxLength: 9000 })), fc.integer({ min: 1, max: 1e6 })).map(([text, seq]) => ({ text, seq }));

describe('sealing a batch of audit lines', () => {
  it('writes the bytes sealLine writes, and every line opens', () => {
    fc.assert(
      fc.property(fc.array(body, { minLength: 1, maxLength: 6 }), fc.nat(4096), (bodies, sizeHint) => {
        const batch = new LineBatch(sizeHint);
        const expected: string[] = [];
        let prevBatch = GENESIS_HASH;
        let prevLines = GENESIS_HASH;
        for (const { text, seq } of bodies) {
          const json = JSON.stringify({ text, seq, prev: prevLines });
          const sealed = sealLine(prevLines, json);
          expected.push(sealed.line);
          prevLines = sealed.hash;
          prevBatch = batch.seal(prevBatch, json);
          assert.equal(prevBatch, prevLines);
        }
        const bytes = batch.bytes();
        assert.ok(bytes.equals(Buffer.from(expected.join(''), 'utf8')));
        for (const line of bytes.subarray(0, -1).toString('utf8').split('\n')) {
          const opened = openLine(Buffer.from(line, 'utf8'));
          assert.ok('line' in opened, 'problem' in opened ? opened.problem : '');
        }
      }),
      { numRuns: 200 },
    );
  });
});
