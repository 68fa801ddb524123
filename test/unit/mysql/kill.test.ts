import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeCommand } from '../../../src/engines/mysql/codec/commands.ts';
import { encodeMessage } from '../../../src/engines/mysql/codec/framer.ts';
import { decodeProcessKill, encodeProcessKill, parseKillStatement, replaceKillId } from '../../../src/engines/mysql/codec/kill.ts';
import { SessionDirectory, translateKill } from '../../../src/engines/mysql/directory.ts';
import { isMeshgateError } from '../../../src/errors/index.ts';

const query = (sql: string) => Buffer.concat([Buffer.of(0x03), Buffer.from(sql, 'utf8')]);

describe('KILL statements', () => {
  it('finds the connection id in the forms drivers and the CLI send', () => {
    for (const [sql, id] of [
      ['KILL 26', 26], // mariadb connector destroy()
      ['KILL QUERY 3', 3], // mariadb CLI, first Ctrl-C
      ['kill connection 7;', 7],
      ['KILL HARD QUERY 12', 12],
      ['KILL SOFT CONNECTION 12 ;  ', 12],
      ["/*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/ KILL 9", 9],
      ['KILL/* why */QUERY/**/44 -- done\n', 44],
      ['\n\tKILL 5 # trailing comment', 5],
    ] as const) {
      const kill = parseKillStatement(sql);
      assert.ok(kill, sql);
      assert.equal(kill.id, id, sql);
      assert.equal(sql.slice(kill.start, kill.end), String(id), sql);
    }
  });

  it('leaves every other statement alone', () => {
    for (const sql of [
      'SELECT 1',
      'KILL',
      'KILL QUERY ID 5', // a query id, not a connection
      'KILL USER app',
      'KILL CONNECTION_ID()',
      'KILL QUERY CONNECTION_ID()',
      'KILL 5+1',
      'KILL 5.0',
      'KILL 5e1',
      'KILL 0x5',
      "KILL '5'",
      'KILL 5; SELECT 1', // several statements: MariaDB reads the id as its own
      'KILL 5 --comment',
      'KILLER 5',
      '/*!KILL 5*/',
      '/*M!100000 KILL 5*/',
      'KILL /*!50000 QUERY */ 5',
      'KILL /* unterminated 5',
      'KILL 1234567890123456', // longer than any connection id
      'SELECT "KILL 5"',
    ]) {
      assert.equal(parseKillStatement(sql), null, sql);
    }
  });

  it('replaces the id in the payload and keeps every other byte', () => {
    const sql = 'KILL QUERY 3 /* café */';
    const kill = parseKillStatement(sql)!;
    const out = replaceKillId(query(sql), sql, kill, 4001);
    assert.deepEqual(out, query('KILL QUERY 4001 /* café */'));
    const shorter = replaceKillId(query('KILL 4001;'), 'KILL 4001;', parseKillStatement('KILL 4001;')!, 7);
    assert.deepEqual(shorter, query('KILL 7;'));
  });

  it('refuses to splice when text before the id is not ASCII (offsets would not be bytes)', () => {
    const sql = '/* café */ KILL 3';
    assert.equal(replaceKillId(query(sql), sql, parseKillStatement(sql)!, 4001), null);
  });

  it('property: the id found is the number written, for any spacing and case', () => {
    const blank = fc.constantFrom(' ', '\n', '\t', '/* x */', ' /**/ ');
    fc.assert(
      fc.property(
        fc.array(blank, { minLength: 0, maxLength: 2 }),
        fc.constantFrom('kill', 'KILL', 'Kill'),
        fc.array(blank, { minLength: 1, maxLength: 2 }),
        fc.constantFrom('', 'QUERY ', 'connection ', 'HARD ', 'soft query '),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.constantFrom('', ';', ' ; ', ' -- x', ' #x\n'),
        (lead, keyword, gap, modifier, id, tail) => {
          const sql = `${lead.join('')}${keyword}${gap.join('')}${modifier}${id}${tail}`;
          const kill = parseKillStatement(sql);
          assert.ok(kill, sql);
          assert.equal(kill.id, id);
          const out = replaceKillId(query(sql), sql, kill, 77)!;
          assert.equal(parseKillStatement(out.toString('utf8', 1))?.id, 77);
        },
      ),
    );
  });
});

describe('COM_PROCESS_KILL', () => {
  it('round-trips the connection id', () => {
    assert.deepEqual(encodeProcessKill(0x01020304), Buffer.from('0c04030201', 'hex'));
    assert.equal(decodeProcessKill(Buffer.from('0c04030201', 'hex')), 0x01020304);
  });

  it('refuses a payload without an id', () => {
    assert.throws(() => decodeProcessKill(Buffer.from('0c0403', 'hex')), isMeshgateError);
  });
});

describe('SessionDirectory and translateKill', () => {
  const ORDERS = 'spiffe://test/ns/shop/sa/orders';
  const OTHER = 'spiffe://test/ns/shop/sa/analytics';
  const directory = new SessionDirectory();
  directory.add(3, { spiffeId: ORDERS, upstreamConnectionId: 4001 });
  directory.add(4, { spiffeId: OTHER, upstreamConnectionId: 4002 });
  const frameOf = (payload: Buffer) => ({ seq: 0, lastSeq: 0, payload, raw: encodeMessage(payload, 0) });
  const translate = (payload: Buffer, spiffeId = ORDERS) => {
    const command = decodeCommand(payload);
    assert.equal(command.kind, 'relay');
    return translateKill(frameOf(payload), command as Extract<typeof command, { kind: 'relay' }>, directory, spiffeId);
  };

  it('maps meshgate ids to upstream ids for the same identity', () => {
    assert.deepEqual(directory.resolveKill(3, ORDERS), { allow: true, upstreamConnectionId: 4001 });
    assert.deepEqual(directory.resolveKill(4001, ORDERS), { allow: true, upstreamConnectionId: 4001 });
    assert.deepEqual(directory.resolveKill(999, ORDERS), { allow: true, upstreamConnectionId: 999 });
    assert.equal(directory.resolveKill(4, ORDERS).allow, false);
    assert.equal(directory.resolveKill(4002, ORDERS).allow, false);
  });

  it('rewrites the statement and COM_PROCESS_KILL, and refuses another identity', () => {
    const statement = translate(query('KILL QUERY 3'));
    assert.ok('frame' in statement);
    assert.deepEqual(statement.frame.raw, encodeMessage(query('KILL QUERY 4001'), 0));
    assert.equal(statement.text, 'KILL QUERY 4001');
    const command = translate(encodeProcessKill(3));
    assert.ok('frame' in command);
    assert.deepEqual(command.frame.payload, encodeProcessKill(4001));
    const refused = translate(query('KILL 4'));
    assert.ok('refusal' in refused && refused.refusal.code === 'MG_POLICY_DENIED');
    const passed = translate(query('SELECT 3'));
    assert.ok('frame' in passed && passed.text === null && passed.frame.raw.equals(encodeMessage(query('SELECT 3'), 0)));
  });

  it('forgets a session once removed', () => {
    const d = new SessionDirectory();
    d.add(8, { spiffeId: OTHER, upstreamConnectionId: 5000 });
    d.remove(8);
    assert.deepEqual(d.resolveKill(8, ORDERS), { allow: true, upstreamConnectionId: 8 });
    assert.deepEqual(d.resolveKill(5000, ORDERS), { allow: true, upstreamConnectionId: 5000 });
  });
});
