import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ServerStatus } from '../../../src/engines/mysql/codec/constants.ts';
import { encodeMessage } from '../../../src/engines/mysql/codec/framer.ts';
import { encodeEof, encodeErr, encodeOk } from '../../../src/engines/mysql/codec/generic.ts';
import type { ResponseShape } from '../../../src/engines/mysql/codec/commands.ts';
import type { ResponseOutcome } from '../../../src/engines/mysql/codec/response-tracker.ts';
import { PayloadWriter } from '../../../src/engines/mysql/codec/wire.ts';
import { column, resultSet, textRow, track, wire } from '../../helpers/mysql-responses.ts';

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

  // More of MariaDB 10.11's answers around cursors, captured (first without, then with
  // DEPRECATE_EOF where they differ). A cursor that fails to open after its metadata went out
  // ends the metadata with an ERR in the EOF's place: the shape meshgate used to misread.
  const OPEN_FAILS_AFTER_METADATA = '01000001011800000203646566000000017801780c3f000b00000003000000000029000003ffda0423323130303053756271756572792072657475726e73206d6f7265207468616e203120726f77';
  const FETCH_NO_CURSOR = '2d000001ff8d052348593030305468652073746174656d656e742028352920686173206e6f206f70656e20637572736f72';
  const CAPTURED: { what: string; shape: ResponseShape; hex: [string, string]; outcome: { rowsReturned: number; status: number; error: number | null } }[] = [
    { what: 'execute with a cursor: fails after its metadata (1242)', shape: 'cursor', hex: [OPEN_FAILS_AFTER_METADATA, OPEN_FAILS_AFTER_METADATA], outcome: { rowsReturned: 0, status: 0, error: 1242 } },
    {
      what: 'execute with a cursor: fails before any metadata (1146)',
      shape: 'cursor',
      hex: ['28000001ff7a042334325330325461626c6520276370726f62652e74322720646f65736e2774206578697374', '28000001ff7a042334325330325461626c6520276370726f62652e74322720646f65736e2774206578697374'],
      outcome: { rowsReturned: 0, status: 0, error: 1146 },
    },
    {
      what: 'execute with a cursor: opened with a warning',
      shape: 'cursor',
      hex: ['01000001011c0000020364656600000003312f3003312f300c3f0007000000f6000004000005000003fe01004200', '01000001011c0000020364656600000003312f3003312f300c3f0007000000f6000004000007000003fe000042000100'],
      outcome: { rowsReturned: 0, status: 0x42, error: null },
    },
    { what: 'execute with a cursor: an INSERT answers OK', shape: 'cursor', hex: ['0700000100010002000000', '0700000100010002000000'], outcome: { rowsReturned: 0, status: 0x02, error: null } },
    {
      what: 'fetch: rows, the cursor stays open',
      shape: 'rows',
      hex: ['060000010000010000000600000200000200000005000003fe00004200', '060000010000010000000600000200000200000007000003fe000042000000'],
      outcome: { rowsReturned: 2, status: 0x42, error: null },
    },
    { what: 'fetch: the last row', shape: 'rows', hex: ['0600000100000300000005000002fe00008200', '0600000100000300000007000002fe000082000000'], outcome: { rowsReturned: 1, status: 0x82, error: null } },
    { what: 'fetch: nothing left', shape: 'rows', hex: ['05000001fe00008200', '07000001fe000082000000'], outcome: { rowsReturned: 0, status: 0x82, error: null } },
    { what: 'fetch: no cursor open (1421)', shape: 'rows', hex: [FETCH_NO_CURSOR, FETCH_NO_CURSOR], outcome: { rowsReturned: 0, status: 0, error: 1421 } },
    {
      what: 'fetch: unknown statement (1243)',
      shape: 'rows',
      hex: Array(2).fill('4e000001ffdb04234859303030556e6b6e6f776e2070726570617265642073746174656d656e742068616e646c6572202839393939392920676976656e20746f206d7973716c645f73746d745f6665746368') as [string, string],
      outcome: { rowsReturned: 0, status: 0, error: 1243 },
    },
  ];
  for (const fixture of CAPTURED) {
    for (const deprecateEof of [false, true]) {
      it(`follows ${fixture.what} (DEPRECATE_EOF=${deprecateEof})`, () => {
        const stream = Buffer.concat([Buffer.from(fixture.hex[deprecateEof ? 1 : 0], 'hex'), encodeMessage(encodeOk({ status: 0x4002 }), 1)]);
        const [outcome, ping, ...rest] = atEverySplit(deprecateEof, [fixture.shape, 'single'], stream);
        assert.equal(rest.length, 0);
        assert.deepEqual({ rowsReturned: outcome!.rowsReturned, status: outcome!.status, error: outcome!.error?.code ?? null }, fixture.outcome);
        assert.equal(ping!.status, 0, 'the command behind it got its own answer');
      });
    }
  }

  it('stays in step behind a cursor that failed after its metadata (issue 11, point 3)', () => {
    // What the session saw: the failed execute, a pipelined fetch, a query, then a prepare.
    // Taking the ERR for the metadata's EOF made the tracker wait for rows, hand the fetch's
    // error to the execute, and end with COM_STMT_PREPARE reading an EOF as PREPARE_OK.
    const prepareOk = new PayloadWriter().u8(0).u32(9).u16(1).u16(0).u8(0).u16(0).toBuffer();
    const stream = Buffer.concat([
      Buffer.from(OPEN_FAILS_AFTER_METADATA, 'hex'),
      Buffer.from(FETCH_NO_CURSOR, 'hex'),
      wire(resultSet(['42'], [['42']], false)),
      wire([prepareOk, column('a'), encodeEof()]),
    ]);
    const outcomes = atEverySplit(false, ['cursor', 'rows', 'result', 'prepare'], stream);
    assert.deepEqual(
      outcomes.map((o) => [o.error?.code ?? null, o.rowsReturned, o.statementId]),
      [
        [1242, 0, null],
        [1421, 0, null],
        [null, 1, null],
        [null, 0, 9],
      ],
    );
  });

  it('reports errors nobody asked for (the server killing the connection)', () => {
    const recorded = track(false, [], [wire([encodeErr({ code: 1927, sqlState: '70100', message: 'Connection was killed' })])]);
    assert.equal(recorded.unsolicited, 1);
  });

  const EOF_AS_OK = (() => {
    const ok = encodeOk({ status: 0x42 });
    ok[0] = 0xfe;
    return ok;
  })();
  const MISREAD: { what: string; deprecateEof: boolean; shapes: ResponseShape[]; packets: Buffer[]; saw: RegExp }[] = [
    { what: 'an EOF where COM_STMT_PREPARE_OK belongs', deprecateEof: false, shapes: ['prepare'], packets: [encodeEof()], saw: /an EOF packet of 5 byte\(s\) in the answer to a prepare command where meshgate expected COM_STMT_PREPARE_OK/ },
    { what: 'a row where the EOF after the metadata belongs', deprecateEof: false, shapes: ['result'], packets: [Buffer.from([1]), column('a'), textRow('1')], saw: /a packet starting 0x01 of 2 byte\(s\) in the answer to a result command where meshgate expected the EOF ending the column definitions/ },
    { what: 'metadata cut short by an EOF', deprecateEof: false, shapes: ['result'], packets: [Buffer.from([2]), column('a'), encodeEof()], saw: /expected definition 2 of 2/ },
    { what: 'a text row in a fetch', deprecateEof: true, shapes: ['rows'], packets: [textRow('1')], saw: /in the answer to a rows command where meshgate expected a binary row/ },
    { what: 'an EOF where a result belongs', deprecateEof: true, shapes: ['result'], packets: [EOF_AS_OK], saw: /an EOF packet of 7 byte\(s\) in the answer to a result command/ },
    { what: 'a LOCAL INFILE request for a prepared statement', deprecateEof: false, shapes: ['cursor'], packets: [Buffer.from('\xfb/etc/passwd', 'latin1')], saw: /packet starting 0xfb/ },
    { what: 'an answer nobody asked for', deprecateEof: false, shapes: [], packets: [encodeOk()], saw: /an OK packet of 7 byte\(s\) between commands/ },
  ];
  for (const c of MISREAD) {
    it(`refuses to misread ${c.what}: MG_UPSTREAM_PROTOCOL, naming the command and the packet`, () => {
      assert.throws(
        () => track(c.deprecateEof, c.shapes, [wire(c.packets)]),
        (e: { code?: string; message?: string }) => e.code === 'MG_UPSTREAM_PROTOCOL' && c.saw.test(e.message ?? ''),
      );
    });
  }

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
