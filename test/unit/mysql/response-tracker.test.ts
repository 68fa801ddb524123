import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ServerStatus } from '../../../src/engines/mysql/codec/constants.ts';
import { encodeMessage } from '../../../src/engines/mysql/codec/framer.ts';
import { encodeEof, encodeErr, encodeOk } from '../../../src/engines/mysql/codec/generic.ts';
import type { ResponseShape } from '../../../src/engines/mysql/codec/commands.ts';
import { ResponseTracker, type ResponseOutcome } from '../../../src/engines/mysql/codec/response-tracker.ts';
import { PayloadWriter } from '../../../src/engines/mysql/codec/wire.ts';

const column = (name: string) => new PayloadWriter().lenencBytes('def').lenencBytes('db').lenencBytes('t').lenencBytes('t').lenencBytes(name).lenencBytes(name).lenenc(12).u16(45).u32(11).u8(3).u16(0).u8(0).u16(0).toBuffer();
const textRow = (...values: string[]) => values.reduce((w, v) => w.lenencBytes(v), new PayloadWriter()).toBuffer();

/** A result set as MariaDB frames it, with or without CLIENT_DEPRECATE_EOF. */
function resultSet(columns: string[], rows: string[][], deprecateEof: boolean, status: number = ServerStatus.AUTOCOMMIT): Buffer[] {
  const packets = [new PayloadWriter().lenenc(columns.length).toBuffer(), ...columns.map(column)];
  if (!deprecateEof) packets.push(encodeEof({ status }));
  for (const row of rows) packets.push(textRow(...row));
  if (deprecateEof) {
    const ok = encodeOk({ status });
    ok[0] = 0xfe;
    packets.push(ok);
  } else packets.push(encodeEof({ status }));
  return packets;
}

function wire(packets: Buffer[]): Buffer {
  return Buffer.concat(packets.map((p, i) => encodeMessage(p, (i + 1) & 0xff)));
}

interface Recorded {
  outcomes: ResponseOutcome[];
  infiles: string[];
  unsolicited: number;
}

function track(deprecateEof: boolean, shapes: ResponseShape[], chunks: Buffer[]): Recorded {
  const recorded: Recorded = { outcomes: [], infiles: [], unsolicited: 0 };
  const tracker = new ResponseTracker(deprecateEof, {
    onResponse: (o) => recorded.outcomes.push(o),
    onLocalInfileRequest: (f) => recorded.infiles.push(f),
    onUnsolicited: () => recorded.unsolicited++,
  });
  for (const shape of shapes) tracker.expect(shape);
  for (const chunk of chunks) tracker.scan(chunk);
  return recorded;
}

/** The same stream fed at every split point gives the same outcomes. */
function atEverySplit(deprecateEof: boolean, shapes: ResponseShape[], stream: Buffer): ResponseOutcome[] {
  const whole = track(deprecateEof, shapes, [stream]).outcomes;
  for (let split = 1; split < stream.length; split++) {
    const parts = track(deprecateEof, shapes, [stream.subarray(0, split), stream.subarray(split)]).outcomes;
    assert.deepEqual(parts, whole, `split at ${split}`);
  }
  return whole;
}

describe('ResponseTracker', () => {
  for (const deprecateEof of [false, true]) {
    it(`counts rows of a text result set (DEPRECATE_EOF=${deprecateEof})`, () => {
      const stream = wire(resultSet(['id', 'name'], [['1', 'a'], ['2', 'b'], ['3', '']], deprecateEof));
      const [outcome, ...rest] = atEverySplit(deprecateEof, ['result'], stream);
      assert.equal(rest.length, 0);
      assert.equal(outcome!.rowsReturned, 3);
      assert.equal(outcome!.error, null);
    });

    it(`follows multi-result responses to the last one (DEPRECATE_EOF=${deprecateEof})`, () => {
      const more = ServerStatus.AUTOCOMMIT | ServerStatus.MORE_RESULTS_EXISTS;
      const stream = Buffer.concat([
        wire(resultSet(['a'], [['1']], deprecateEof, more)),
        wire([encodeOk({ affectedRows: 5, status: more })]),
        wire(resultSet(['b'], [['1'], ['2']], deprecateEof)),
        wire([encodeOk({ affectedRows: 0 })]), // the next command's answer
      ]);
      const outcomes = atEverySplit(deprecateEof, ['result', 'single'], stream);
      assert.equal(outcomes.length, 2);
      assert.equal(outcomes[0]!.rowsReturned, 3);
      assert.equal(outcomes[0]!.rowsAffected, 5);
    });

    it(`stops at an error in the middle of rows (DEPRECATE_EOF=${deprecateEof})`, () => {
      const packets = resultSet(['a'], [['1'], ['2']], deprecateEof);
      packets.splice(packets.length - 1, 1, encodeErr({ code: 1317, sqlState: '70100', message: 'Query execution was interrupted' }));
      const [outcome] = atEverySplit(deprecateEof, ['result'], wire(packets));
      assert.equal(outcome!.rowsReturned, 2);
      assert.equal(outcome!.error?.code, 1317);
    });

    it(`reads a prepare response with parameters and columns (DEPRECATE_EOF=${deprecateEof})`, () => {
      const prepareOk = new PayloadWriter().u8(0).u32(7).u16(2).u16(1).u8(0).u16(0).toBuffer();
      const packets = [prepareOk, column('?')];
      if (!deprecateEof) packets.push(encodeEof());
      packets.push(column('a'), column('b'));
      if (!deprecateEof) packets.push(encodeEof());
      const stream = Buffer.concat([wire(packets), wire([encodeOk()])]);
      const outcomes = atEverySplit(deprecateEof, ['prepare', 'single'], stream);
      assert.equal(outcomes.length, 2);
      assert.equal(outcomes[0]!.statementId, 7);
    });
  }

  it('does not mistake a text row that starts with 0xFE for a terminator', () => {
    // A row whose first value is 8-byte length-encoded is >= 16 MiB long, so only a
    // continued packet can start with 0xFE; a short 0xFE packet is always a terminator.
    const big = Buffer.alloc(0xffffff + 20, 0x78);
    big[0] = 0xfe;
    big.writeBigUInt64LE(BigInt(big.length - 9), 1);
    const packets = [new PayloadWriter().lenenc(1).toBuffer(), column('blob'), encodeEof()];
    const stream = Buffer.concat([wire(packets), encodeMessage(big, 4), encodeMessage(encodeEof(), 6)]);
    const outcomes = track(false, ['result'], [stream.subarray(0, 1000), stream.subarray(1000, 0xffff00), stream.subarray(0xffff00)]).outcomes;
    assert.equal(outcomes.length, 1);
    assert.equal(outcomes[0]!.rowsReturned, 1);
  });

  it('reports LOCAL INFILE requests and completes on the final OK', () => {
    const request = Buffer.concat([Buffer.from([0xfb]), Buffer.from('/etc/passwd')]);
    const recorded = track(false, ['result'], [wire([request]), wire([encodeOk({ affectedRows: 2 })])]);
    assert.deepEqual(recorded.infiles, ['/etc/passwd']);
    assert.equal(recorded.outcomes[0]!.rowsAffected, 2);
  });

  // MariaDB 10.11's answers to COM_STMT_EXECUTE with CURSOR_TYPE_READ_ONLY, captured. With a
  // cursor open the metadata ends with an EOF (or, under DEPRECATE_EOF, an OK in EOF form)
  // flagged CURSOR_EXISTS and rows wait for COM_STMT_FETCH. A CALL ignores the flag and sends
  // its result sets in full.
  const CURSOR_FIXTURES = [
    {
      what: 'cursor opened, SELECT 1 AS a UNION SELECT 2',
      deprecateEof: false,
      hex: '01000001011800000203646566000000016101610c3f000200000003010000000005000003fe00006200',
      outcome: { rowsReturned: 0, status: 0x62 },
    },
    {
      what: 'cursor opened, SELECT 1 AS a UNION SELECT 2',
      deprecateEof: true,
      hex: '01000001011800000203646566000000016101610c3f000200000003010000000007000003fe000062000000',
      outcome: { rowsReturned: 0, status: 0x62 },
    },
    {
      what: 'cursor flag ignored, CALL p()',
      deprecateEof: false,
      hex: '010000010117000002036465660000000178000c3f000100000003810000000005000003fe00000a000600000400000100000005000005fe00000a000700000600000002000000',
      outcome: { rowsReturned: 1, status: 0x02 },
    },
    {
      what: 'cursor flag ignored, CALL p()',
      deprecateEof: true,
      hex: '010000010117000002036465660000000178000c3f00010000000381000000000600000300000100000007000004fe00000a0000000700000500000002000000',
      outcome: { rowsReturned: 1, status: 0x02 },
    },
  ];
  for (const fixture of CURSOR_FIXTURES) {
    it(`follows an execute with a cursor to its end: ${fixture.what} (DEPRECATE_EOF=${fixture.deprecateEof})`, () => {
      // A pipelined COM_PING behind it must get its own answer, not a leftover packet.
      const stream = Buffer.concat([Buffer.from(fixture.hex, 'hex'), encodeMessage(encodeOk({ status: 0x4002 }), 1)]);
      const recorded = track(fixture.deprecateEof, ['cursor', 'single'], [stream]);
      assert.equal(recorded.unsolicited, 0);
      assert.equal(recorded.outcomes.length, 2);
      const [execute, ping] = recorded.outcomes;
      assert.deepEqual({ rowsReturned: execute!.rowsReturned, status: execute!.status, error: execute!.error }, { ...fixture.outcome, error: null });
      assert.equal(ping!.status, 0);
      assert.equal(ping!.error, null);
      atEverySplit(fixture.deprecateEof, ['cursor', 'single'], stream);
    });
  }

  it('reports packets nobody asked for', () => {
    const recorded = track(false, [], [wire([encodeErr({ code: 1927, sqlState: '70100', message: 'Connection was killed' })])]);
    assert.equal(recorded.unsolicited, 1);
  });

  it('property: random result sets are counted exactly, however they are chunked', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(fc.array(fc.string({ maxLength: 40 }), { minLength: 2, maxLength: 2 }), { maxLength: 30 }),
        fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 10 }),
        (deprecateEof, rows, cuts) => {
          const stream = wire(resultSet(['a', 'b'], rows, deprecateEof));
          const chunks: Buffer[] = [];
          for (let offset = 0, c = 0; offset < stream.length; c++) {
            const size = cuts[c % cuts.length]!;
            chunks.push(stream.subarray(offset, offset + size));
            offset += size;
          }
          const { outcomes } = track(deprecateEof, ['result'], chunks);
          assert.equal(outcomes.length, 1);
          assert.equal(outcomes[0]!.rowsReturned, rows.length);
        },
      ),
    );
  });
});
