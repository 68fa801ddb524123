import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseKillStatement, replaceKillId } from '../../../../src/engines/mysql/sql/kill.ts';

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
