/**
 * Property: any sequence of valid answers — every shape MariaDB sends, cursors and errors
 * included — is followed to exactly the outcomes it holds, however the byte stream is cut
 * into chunks, and the outcomes of a chunked feed equal those of the whole stream.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ServerStatus } from '../../../src/engines/mysql/codec/constants.ts';
import type { ResponseShape } from '../../../src/engines/mysql/codec/commands.ts';
import { encodeEof, encodeErr, encodeOk } from '../../../src/engines/mysql/codec/generic.ts';
import type { ResponseOutcome } from '../../../src/engines/mysql/codec/response-tracker.ts';
import { PayloadWriter } from '../../../src/engines/mysql/codec/wire.ts';
import { column, terminator, track, wire } from '../../helpers/mysql-responses.ts';

interface Expected {
  readonly rowsReturned: number;
  readonly rowsAffected: number;
  readonly error: number | null;
  readonly statementId: number | null;
  readonly status: number;
}
interface Answer {
  readonly shape: ResponseShape;
  readonly packets: Buffer[];
  readonly expected: Expected;
}

const NONE: Expected = { rowsReturned: 0, rowsAffected: 0, error: null, statementId: null, status: 0 };
const AUTOCOMMIT: number = ServerStatus.AUTOCOMMIT;
const MORE = ServerStatus.MORE_RESULTS_EXISTS;
const CURSOR_EXISTS = ServerStatus.CURSOR_EXISTS;

const err = (code: number) => encodeErr({ code, sqlState: 'HY000', message: `error ${code}` });
const definitions = (n: number) => Array.from({ length: n }, (_, i) => column(`c${i}`));
/** A text row: length-encoded strings, NULL as 0xFB. */
const textRowArb = (columns: number) =>
  fc.array(fc.option(fc.string({ maxLength: 40 })), { minLength: columns, maxLength: columns }).map((values) => {
    const w = new PayloadWriter();
    for (const v of values) (v === null ? w.u8(0xfb) : w.lenencBytes(v));
    return w.toBuffer();
  });
/** A binary row: the 0x00 header, then whatever the null bitmap and values hold. */
const binaryRowArb = fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.concat([Buffer.from([0x00]), bytes]));
const codeArb = fc.integer({ min: 1000, max: 4200 });

/** Column count, definitions and (without DEPRECATE_EOF) the EOF ending them. */
function metadata(d: boolean, columns: number, status = AUTOCOMMIT): Buffer[] {
  return [new PayloadWriter().lenenc(columns).toBuffer(), ...definitions(columns), ...(d ? [] : [encodeEof({ status })])];
}

/** Result sets chained by MORE_RESULTS_EXISTS, the last one or a final OK ending the answer. */
function chainedSets(d: boolean, binary: boolean) {
  const rowArb = (columns: number) => (binary ? binaryRowArb : textRowArb(columns));
  const setArb = fc.integer({ min: 1, max: 3 }).chain((columns) => fc.tuple(fc.constant(columns), fc.array(rowArb(columns), { maxLength: 6 })));
  return fc.tuple(fc.array(setArb, { minLength: 1, maxLength: 3 }), fc.boolean(), fc.nat(50)).map(([sets, finalOk, affected]): Omit<Answer, 'shape'> => {
    const packets: Buffer[] = [];
    sets.forEach(([columns, rows], i) => {
      const last = i === sets.length - 1 && !finalOk;
      const status = last ? AUTOCOMMIT : AUTOCOMMIT | MORE;
      packets.push(...metadata(d, columns, status), ...rows, terminator(d, status));
    });
    if (finalOk) packets.push(encodeOk({ affectedRows: affected, status: AUTOCOMMIT }));
    const rowsReturned = sets.reduce((n, [, rows]) => n + rows.length, 0);
    return { packets, expected: { ...NONE, rowsReturned, rowsAffected: finalOk ? affected : 0, status: AUTOCOMMIT } };
  });
}

function answerArb(d: boolean): fc.Arbitrary<Answer> {
  const shapes: ResponseShape[] = ['single', 'result', 'cursor', 'rows', 'prepare', 'fields'];
  const anyError = fc.tuple(fc.constantFrom(...shapes), codeArb).map(([shape, code]): Answer => ({ shape, packets: [err(code)], expected: { ...NONE, error: code } }));
  const ok = fc.tuple(fc.constantFrom<ResponseShape>('result', 'cursor'), fc.nat(1000)).map(([shape, affected]): Answer => ({ shape, packets: [encodeOk({ affectedRows: affected, status: AUTOCOMMIT })], expected: { ...NONE, rowsAffected: affected, status: AUTOCOMMIT } }));
  const single = fc.nat(1000).map((affected): Answer => ({ shape: 'single', packets: [encodeOk({ affectedRows: affected, status: AUTOCOMMIT })], expected: { ...NONE, rowsAffected: affected } }));
  const textSets = chainedSets(d, false).map((a): Answer => ({ shape: 'result', ...a }));
  // An execute asking for a cursor that the statement ignores (CALL): binary sets in full.
  const binarySets = chainedSets(d, true).map((a): Answer => ({ shape: 'cursor', ...a }));
  const rowsThenError = fc.tuple(fc.integer({ min: 1, max: 3 }), fc.nat(5), codeArb).chain(([columns, count, code]) =>
    fc.array(textRowArb(columns), { minLength: count, maxLength: count }).map((rows): Answer => ({ shape: 'result', packets: [...metadata(d, columns), ...rows, err(code)], expected: { ...NONE, rowsReturned: count, error: code } })),
  );
  const localInfile = fc.tuple(fc.string({ minLength: 1, maxLength: 30 }), fc.nat(100)).map(([file, affected]): Answer => ({
    shape: 'result',
    packets: [Buffer.concat([Buffer.from([0xfb]), Buffer.from(file)]), encodeOk({ affectedRows: affected, status: AUTOCOMMIT })],
    expected: { ...NONE, rowsAffected: affected, status: AUTOCOMMIT },
  }));
  // A cursor opened: metadata only, its end flagged CURSOR_EXISTS.
  const cursorOpened = fc.integer({ min: 1, max: 4 }).map((columns): Answer => {
    const status = AUTOCOMMIT | CURSOR_EXISTS;
    const packets = [new PayloadWriter().lenenc(columns).toBuffer(), ...definitions(columns), terminator(d, status)];
    return { shape: 'cursor', packets, expected: { ...NONE, status } };
  });
  // A cursor that fails to materialise once its metadata is out: an ERR where the end was due.
  const cursorFailed = fc.tuple(fc.integer({ min: 1, max: 4 }), codeArb).map(([columns, code]): Answer => ({
    shape: 'cursor',
    packets: [new PayloadWriter().lenenc(columns).toBuffer(), ...definitions(columns), err(code)],
    expected: { ...NONE, error: code },
  }));
  const fetched = fc.tuple(fc.array(binaryRowArb, { maxLength: 8 }), fc.constantFrom(CURSOR_EXISTS, ServerStatus.LAST_ROW_SENT), fc.option(codeArb)).map(([rows, flag, code]): Answer => {
    const end = code === null ? terminator(d, AUTOCOMMIT | flag) : err(code);
    return { shape: 'rows', packets: [...rows, end], expected: { ...NONE, rowsReturned: rows.length, error: code, status: code === null ? AUTOCOMMIT | flag : 0 } };
  });
  const prepared = fc.tuple(fc.nat(0xffff_ffff), fc.nat(4), fc.nat(4)).map(([id, columns, params]): Answer => {
    const packets = [new PayloadWriter().u8(0).u32(id).u16(columns).u16(params).u8(0).u16(0).toBuffer()];
    for (const count of [params, columns]) if (count > 0) packets.push(...definitions(count), ...(d ? [] : [encodeEof()]));
    return { shape: 'prepare', packets, expected: { ...NONE, statementId: id } };
  });
  const fields = fc.nat(4).map((n): Answer => ({ shape: 'fields', packets: [...definitions(n), encodeEof()], expected: NONE }));
  return fc.oneof(anyError, ok, single, textSets, binarySets, rowsThenError, localInfile, cursorOpened, cursorFailed, fetched, prepared, fields);
}

const summary = (o: ResponseOutcome): Expected => ({ rowsReturned: o.rowsReturned, rowsAffected: o.rowsAffected, error: o.error?.code ?? null, statementId: o.statementId, status: o.status });

/** `stream` cut into pieces of the given sizes, in turn. */
function cut(stream: Buffer, sizes: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0, i = 0; offset < stream.length; i++) {
    const size = sizes[i % sizes.length]!;
    chunks.push(stream.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

describe('ResponseTracker (property)', () => {
  it('follows any sequence of valid answers to their outcomes, however the stream is chunked', () => {
    const scenario = fc.boolean().chain((d) => fc.tuple(fc.constant(d), fc.array(answerArb(d), { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 120 }), { minLength: 1, maxLength: 12 })));
    fc.assert(
      fc.property(scenario, ([deprecateEof, answers, sizes]) => {
        const shapes = answers.map((a) => a.shape);
        const stream = Buffer.concat(answers.map((a) => wire(a.packets)));
        const whole = track(deprecateEof, shapes, [stream]);
        const chunked = track(deprecateEof, shapes, cut(stream, sizes));
        assert.deepEqual(whole.outcomes.map(summary), answers.map((a) => a.expected));
        assert.deepEqual(chunked.outcomes, whole.outcomes);
        assert.deepEqual(chunked.infiles, whole.infiles);
        assert.equal(whole.unsolicited, 0);
      }),
      { numRuns: 300 },
    );
  });
});
