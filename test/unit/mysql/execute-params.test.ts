import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { readExecuteParameters, type ParameterType } from '../../../src/engines/mysql/codec/execute-params.ts';
import { PayloadWriter } from '../../../src/engines/mysql/codec/wire.ts';

/** A parameter as a client binds it: type, flag, and its binary value (null: NULL). */
interface Bound {
  readonly type: number;
  readonly unsigned?: boolean;
  readonly value: Buffer | null;
}

/** COM_STMT_EXECUTE as https://mariadb.com/kb/en/com_stmt_execute/ lays it out. */
function execute(params: readonly Bound[], options: { sendTypes?: boolean; skip?: ReadonlySet<number> } = {}): Buffer {
  const w = new PayloadWriter().u8(0x17).u32(7).u8(0).u32(1);
  if (params.length === 0) return w.toBuffer();
  const nulls = Buffer.alloc((params.length + 7) >> 3);
  params.forEach((p, i) => {
    if (p.value === null) nulls[i >> 3]! |= 1 << (i & 7);
  });
  w.bytes(nulls).u8(options.sendTypes === false ? 0 : 1);
  if (options.sendTypes !== false) for (const p of params) w.u8(p.type).u8(p.unsigned === true ? 0x80 : 0);
  params.forEach((p, i) => {
    if (p.value !== null && options.skip?.has(i) !== true) w.bytes(p.value);
  });
  return w.toBuffer();
}

const int64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(n);
  return b;
};
const lenenc = (text: string | Buffer) => new PayloadWriter().lenencBytes(text).toBuffer();
const read = (payload: Buffer, count: number, extra: Partial<Parameters<typeof readExecuteParameters>[1]> = {}) =>
  readExecuteParameters(payload, { parameterCount: count, previousTypes: null, longData: new Set(), mode: 'values', maxValueBytes: 16, ...extra });

describe('COM_STMT_EXECUTE parameters', () => {
  it('reads every binary encoding a client sends, with its type name', () => {
    const date = Buffer.from([11, 0xe8, 0x07, 12, 7, 13, 4, 5, 0x40, 0xe2, 0x01, 0x00]);
    const time = Buffer.from([12, 1, 2, 0, 0, 0, 3, 4, 5, 0x01, 0x00, 0x00, 0x00]);
    const payload = execute([
      { type: 1, value: Buffer.from([0xff]) },
      { type: 1, unsigned: true, value: Buffer.from([0xff]) },
      { type: 2, value: Buffer.from([0x00, 0x80]) },
      { type: 3, value: Buffer.from([0xff, 0xff, 0xff, 0x7f]) },
      { type: 8, value: int64(-42n) },
      { type: 8, value: int64(2n ** 62n) },
      { type: 5, value: Buffer.from(new Float64Array([2.5]).buffer) },
      { type: 12, value: date },
      { type: 11, value: time },
      { type: 253, value: lenenc('héllo') },
      { type: 246, value: lenenc('12.50') },
      { type: 6, value: null },
      { type: 253, value: null },
    ]);
    const result = read(payload, 13);
    assert.ok('parameters' in result, JSON.stringify(result));
    assert.deepEqual(result.parameters, [
      { type: 'TINY', value: -1 },
      { type: 'TINY UNSIGNED', value: 255 },
      { type: 'SHORT', value: -32768 },
      { type: 'LONG', value: 2147483647 },
      { type: 'LONGLONG', value: -42 },
      { type: 'LONGLONG', value: '4611686018427387904' },
      { type: 'DOUBLE', value: 2.5 },
      { type: 'DATETIME', value: '2024-12-07 13:04:05.123456' },
      { type: 'TIME', value: '-2 03:04:05.000001' },
      { type: 'VAR_STRING', value: 'héllo', bytes: 6 },
      { type: 'NEWDECIMAL', value: '12.50', bytes: 5 },
      { type: 'NULL', value: null },
      { type: 'VAR_STRING', value: null },
    ]);
  });

  it('with types: the types and lengths, never a value', () => {
    const payload = execute([
      { type: 8, value: int64(7n) },
      { type: 253, value: lenenc('secret card number') },
      { type: 253, value: null },
    ]);
    const result = read(payload, 3, { mode: 'types' });
    assert.ok('parameters' in result);
    assert.deepEqual(result.parameters, [{ type: 'LONGLONG' }, { type: 'VAR_STRING', bytes: 18 }, { type: 'VAR_STRING' }]);
    assert.doesNotMatch(JSON.stringify(result), /secret/);
  });

  it('cuts long values at maxValueBytes and marks them, without splitting a character', () => {
    const result = read(execute([{ type: 253, value: lenenc('aaaaaaaaaaaaaaa€€') }]), 1);
    assert.ok('parameters' in result);
    assert.deepEqual(result.parameters, [{ type: 'VAR_STRING', value: 'aaaaaaaaaaaaaaa', truncated: true, bytes: 21 }]);
  });

  it('writes binary values as hex', () => {
    const result = read(execute([{ type: 252, value: lenenc(Buffer.from([0x00, 0xff, 0x10])) }]), 1);
    assert.ok('parameters' in result);
    assert.deepEqual(result.parameters, [{ type: 'BLOB', value: '0x00ff10', bytes: 3 }]);
  });

  it('an execute that sends no types uses those of the one before it', () => {
    const types: ParameterType[] = [{ type: 3, unsigned: false }, { type: 253, unsigned: false }];
    const payload = execute([{ type: 3, value: Buffer.from([5, 0, 0, 0]) }, { type: 253, value: lenenc('x') }], { sendTypes: false });
    const result = read(payload, 2, { previousTypes: types });
    assert.ok('parameters' in result);
    assert.deepEqual(result.parameters, [{ type: 'LONG', value: 5 }, { type: 'VAR_STRING', value: 'x', bytes: 1 }]);
    assert.deepEqual(read(payload, 2), { problem: 'the execute sends no parameter types and none are known from an earlier one' });
  });

  it('a parameter sent as long data is not in the execute', () => {
    const payload = execute(
      [
        { type: 252, value: lenenc('sent before') },
        { type: 3, value: Buffer.from([9, 0, 0, 0]) },
      ],
      { skip: new Set([0]) },
    );
    const result = read(payload, 2, { longData: new Set([0]) });
    assert.ok('parameters' in result);
    assert.deepEqual(result.parameters, [{ type: 'BLOB', longData: true }, { type: 'LONG', value: 9 }]);
  });

  it('a short execute is a problem, not an exception', () => {
    const payload = execute([{ type: 8, value: int64(1n) }]).subarray(0, 15);
    const result = read(payload, 1);
    assert.ok('problem' in result);
    assert.match(result.problem, /malformed COM_STMT_EXECUTE/);
  });

  it('never throws and never reads past the payload, whatever the client sends', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 40 }), fc.constantFrom<'types' | 'values'>('types', 'values'), (bytes, count, mode) => {
        const result = read(Buffer.from(bytes), count, { mode });
        if ('parameters' in result) {
          assert.equal(result.parameters.length, count);
          assert.doesNotThrow(() => JSON.stringify(result));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('reads back what a reference encoder wrote, for any parameters', () => {
    const bound = fc.oneof(
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((n): [Bound, unknown] => {
        const b = Buffer.alloc(4);
        b.writeInt32LE(n);
        return [{ type: 3, value: b }, n];
      }),
      fc.string({ maxLength: 40 }).map((s): [Bound, unknown] => [{ type: 253, value: lenenc(s) }, s]),
      fc.constant<[Bound, unknown]>([{ type: 8, value: null }, null]),
    );
    fc.assert(
      fc.property(fc.array(bound, { maxLength: 20 }), (params) => {
        const result = read(execute(params.map(([b]) => b)), params.length, { maxValueBytes: 1000 });
        assert.ok('parameters' in result);
        assert.deepEqual(
          result.parameters.map((p) => p.value),
          params.map(([, value]) => (typeof value === 'string' && /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(value) ? `0x${Buffer.from(value).toString('hex')}` : value)),
        );
      }),
      { numRuns: 500 },
    );
  });
});
