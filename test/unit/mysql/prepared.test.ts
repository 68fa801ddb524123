import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { LAST_PREPARED_STATEMENT_ID } from '../../../src/engines/mysql/codec/constants.ts';
import { PayloadWriter } from '../../../src/engines/mysql/codec/wire.ts';
import { PreparedStatements } from '../../../src/engines/mysql/prepared.ts';
import type { StatementRecord } from '../../../src/engines/mysql/statement-text.ts';

const statement = (text: string) => ({ text, record: () => ({ text }) as unknown as StatementRecord });
/** COM_STMT_EXECUTE of one LONG parameter (types sent), or of one whose value went as long data. */
const executeLong = (id: number, value: number | 'long data') => {
  const w = new PayloadWriter().u8(0x17).u32(id).u8(0).u32(1).u8(0).u8(1).u8(3).u8(0);
  return value === 'long data' ? w.toBuffer() : w.u32(value).toBuffer();
};

describe('a session\'s prepared statements', () => {
  it('an execute pipelined behind its prepare (id -1) is read once the prepare is answered', () => {
    const statements = new PreparedStatements({ mode: 'values', maxValueBytes: 64 });
    const answered = statements.preparing(statement('SELECT ?'));
    const facts = statements.executing(LAST_PREPARED_STATEMENT_ID, executeLong(LAST_PREPARED_STATEMENT_ID, 7), 'a'.repeat(32));
    assert.deepEqual(answered({ statementId: 3, parameters: 1 }), { statementId: 3, parameterCount: 1 });
    assert.deepEqual(facts(), { statementId: -1, parameters: [{ type: 'LONG', value: 7 }] });
    assert.equal(statements.get(3)?.text, 'SELECT ?');
  });

  it('long data belongs to the next execute only, and COM_STMT_RESET drops it', () => {
    const statements = new PreparedStatements({ mode: 'types', maxValueBytes: 64 });
    statements.preparing(statement('INSERT ?'))({ statementId: 1, parameters: 1 });
    statements.longData(1, 0, 100);
    statements.longData(1, 0, 50);
    const first = statements.executing(1, executeLong(1, 'long data'), 't1');
    const second = statements.executing(1, executeLong(1, 5), 't2');
    assert.deepEqual(first(), { statementId: 1, parameters: [{ type: 'LONG', longData: true }], longData: { chunks: 2, bytes: 150 } });
    assert.deepEqual(second(), { statementId: 1, parameters: [{ type: 'LONG' }] });
    statements.longData(1, 0, 10);
    statements.reset(1);
    assert.equal(statements.executing(1, executeLong(1, 5), 't3')().longData, undefined);
  });

  it('fetches are numbered per cursor and carry its execute\'s trace; a new execute starts again', () => {
    const statements = new PreparedStatements({ mode: 'none', maxValueBytes: 64 });
    statements.preparing(statement('SELECT a'))({ statementId: 2, parameters: 0 });
    statements.executing(2, executeLong(2, 1), 'first');
    assert.deepEqual(statements.fetching(2), { traceId: 'first', facts: { statementId: 2, fetch: 1 } });
    assert.deepEqual(statements.fetching(2), { traceId: 'first', facts: { statementId: 2, fetch: 2 } });
    statements.executing(2, executeLong(2, 1), 'second');
    assert.deepEqual(statements.fetching(2), { traceId: 'second', facts: { statementId: 2, fetch: 1 } });
    statements.close(2);
    assert.equal(statements.fetching(2), null);
    assert.equal(statements.get(2), null);
  });

  it('none: no parameters read; a failed prepare makes no id', () => {
    const statements = new PreparedStatements({ mode: 'none', maxValueBytes: 64 });
    assert.deepEqual(statements.preparing(statement('SELEC ?'))(null), { statementId: null });
    statements.preparing(statement('SELECT ?'))({ statementId: 4, parameters: 1 });
    assert.deepEqual(statements.executing(4, executeLong(4, 9), 't')(), { statementId: 4 });
  });
});
