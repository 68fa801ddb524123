import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { statementVerbs, statementVerbsOfPrefix } from '../../../../src/engines/mysql/sql/classify.ts';
import { statementPlan } from '../../../../src/engines/mysql/sql/definer.ts';

const MULTI = { multiStatements: true, wholeText: true };

describe('statementVerbs', () => {
  it('gives the verb of every statement, in order', () => {
    assert.deepEqual(statementVerbs('SELECT 1'), ['SELECT']);
    assert.deepEqual(statementVerbs(`SELECT 1 /*${'x'.repeat(70_000)}*/; DELETE FROM t`), ['SELECT', 'DELETE']);
    assert.deepEqual(statementVerbs(`/*${'x'.repeat(70_000)}*/ DELETE FROM t`), ['DELETE'], 'a long leading comment hides nothing');
    assert.deepEqual(statementVerbs("UPDATE t SET a = ';'; -- c;\n insert into t values (1);"), ['UPDATE', 'INSERT']);
    assert.deepEqual(statementVerbs('/*!40101 SET a = 1 */; (SELECT 1); /* only a comment */'), ['SET', 'SELECT']);
    assert.deepEqual(statementVerbs('SELECT 1; ;'), ['SELECT']);
    assert.deepEqual(statementVerbs('SELECT 1; 42'), ['SELECT', null]);
    assert.deepEqual(statementVerbs(''), []);
  });

  it('lists what NO_BACKSLASH_ESCAPES would run too: never less than ran', () => {
    assert.deepEqual(statementVerbs("SELECT '\\'; DELETE FROM t; -- '"), ['SELECT', 'DELETE']);
    assert.deepEqual(statementVerbs("SELECT 'a\\'; DELETE FROM t; SELECT '"), ['SELECT', 'DELETE', 'SELECT']);
    assert.deepEqual(statementVerbs("SELECT 'a\\\\'; DELETE FROM t"), ['SELECT', 'DELETE']);
  });

  it('reads a prefix when nothing past it can start a statement, and only then', () => {
    const long = `SELECT 1; DELETE FROM t WHERE x = '${'y'.repeat(1000)}`;
    assert.deepEqual(statementVerbsOfPrefix(long), ['SELECT', 'DELETE']);
    assert.equal(statementVerbsOfPrefix('SELECT 1; DEL'), null, 'the last verb may be cut');
    assert.equal(statementVerbsOfPrefix(`SELECT 1; /*${'x'.repeat(1000)}`), null, 'still inside a comment');
    assert.equal(statementVerbsOfPrefix(`SELECT 1;${' '.repeat(1000)}`), null, 'nothing of the last statement yet');
    assert.equal(statementVerbsOfPrefix(`SELECT '\\'; ${'y'.repeat(1000)}`), null);
  });

  it('never throws', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom("'", '"', '\\', ';', '/*', '*/', '/*!', '-- ', '\n', 'SELECT', 'x', ' ') })), (sql) => {
        const verbs = statementVerbs(sql);
        assert.ok(verbs.every((v) => v === null || /^[A-Z][A-Z0-9_]*$/.test(v)));
        statementVerbsOfPrefix(sql);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('statementPlan: where each later statement of a multi-statement text starts', () => {
  const starts = (sql: string) => statementPlan(sql, MULTI).starts;

  it('finds each statement after the whitespace that follows its ";"', () => {
    const sql = 'SELECT 1;\n  /* c */ DELETE FROM t WHERE a = \';\';UPDATE t SET a = 1';
    assert.deepEqual(starts(sql), [
      { at: sql.indexOf('/* c */'), verb: 'DELETE' },
      { at: sql.indexOf('UPDATE'), verb: 'UPDATE' },
    ]);
    assert.deepEqual(starts('BEGIN; INSERT INTO t VALUES (1); COMMIT'), [
      { at: 7, verb: 'INSERT' },
      { at: 33, verb: 'COMMIT' },
    ]);
  });

  it('stops where it cannot be sure, and never without CLIENT_MULTI_STATEMENTS', () => {
    assert.deepEqual(statementPlan('SELECT 1; DELETE FROM t', { wholeText: true }).starts, []);
    assert.deepEqual(statementPlan('SELECT 1; COMMIT', { multiStatements: true }).starts, [], 'a prefix: COMMIT may go on');
    assert.deepEqual(starts("SELECT 'é'; DELETE FROM t"), [], 'not ASCII before it');
    assert.deepEqual(starts('CREATE PROCEDURE p() BEGIN SELECT 1; END; SELECT 2'), [], 'a body may hold ";"');
    assert.deepEqual(starts('BEGIN NOT ATOMIC SELECT 1; END; SELECT 2'), []);
    assert.deepEqual(starts('SELECT 1 /*! ; SELECT 2 */'), [], 'inside an executable comment');
    assert.deepEqual(starts('SELECT 1;; SELECT 2'), [], 'an empty statement is MariaDB\'s to judge');
    assert.deepEqual(starts('SELECT 1; -- only a comment'), []);
    assert.deepEqual(starts("SELECT '\\'; SELECT 2; SELECT '; SELECT 3"), [], 'the readings of "\\\\" part at once');
    const agreed = "SELECT '\\\\'; SELECT 2";
    assert.deepEqual(starts(agreed), [{ at: agreed.indexOf('SELECT 2'), verb: 'SELECT' }]);
  });

  it('gives starts in order, at statement starts MariaDB would strip to', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('SELECT 1', "INSERT INTO t VALUES ('a;b')", 'UPDATE t SET a = "x"', 'SHOW TABLES', 'CREATE TABLE t (a INT)', 'DO 1', '/* c; */ SELECT 2'), { minLength: 1, maxLength: 6 }),
        fc.array(fc.constantFrom(';', '; ', ';\n\t', ' ;  '), { minLength: 6, maxLength: 6 }),
        (statements, separators) => {
          const sql = statements.map((s, i) => (i === 0 ? s : separators[i]! + s)).join('');
          const found = starts(sql);
          assert.equal(found.length, statements.length - 1, sql);
          for (const [k, start] of found.entries()) {
            assert.equal(sql.slice(start.at).startsWith(statements[k + 1]!), true, `${sql} at ${start.at}`);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
