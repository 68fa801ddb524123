/**
 * The command stages on statement texts: account statements never go upstream, every
 * statement of a multi-statement text goes tagged, and the audit gets the text's facts —
 * prefix, truncation, length, hash, every verb — for queries, prepares and their executions.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Route } from '../../../src/engines/mysql/command-stages.ts';
import { Command } from '../../../src/engines/mysql/codec/constants.ts';
import { stagesSession } from './command-stages-helpers.ts';

const HEAD = "/*meshgate_identity='spiffe%3A%2F%2Ftest.local%2Fns%2Fshop%2Fsa%2Forders',meshgate_role='shop_writer'";

function session(options: { multiStatements?: boolean; statementBytes?: number } = {}) {
  const { route, forward, audited } = stagesSession({ ...options, tagStatements: true });
  /** The statement as it goes upstream (after the command byte), its answer given. */
  const send = (code: number, body: Buffer | string, statementId: number | null = null): string => forward(code, body, statementId).subarray(1).toString('latin1');
  return { route, send, audited };
}

/** The tag with its trace removed, so texts compare. */
const untraced = (sql: string) => sql.replace(/,traceparent='00-[0-9a-f]{32}-[0-9a-f]{16}-01'/g, '');

describe('command stages: account statements', () => {
  it('answers them itself, before anything goes upstream, and audits the refusal with the text\'s facts', () => {
    const s = session({ multiStatements: true });
    for (const sql of ["SELECT 1; SET PASSWORD = PASSWORD('x')", "EXECUTE IMMEDIATE 'GRANT ALL ON *.* TO me'"]) {
      const r = s.route(Command.QUERY, sql);
      assert.equal(r.kind, 'answer');
      assert.equal((r as Extract<Route, { kind: 'answer' }>).error.code, 'MG_ACCOUNT_CHANGE_REFUSED');
    }
    const r = s.route(Command.STMT_PREPARE, 'ALTER USER CURRENT_USER() IDENTIFIED BY ?');
    assert.equal(r.kind === 'answer' && r.error.code, 'MG_ACCOUNT_CHANGE_REFUSED');
    assert.match((r as Extract<Route, { kind: 'answer' }>).error.message, /ALTER USER.*managed by meshgate and its operator/);
    assert.deepEqual(
      s.audited.map((f) => [f.decision, f.verbs, f.statementBytes]),
      [
        ['deny', ['SELECT', 'SET'], 38],
        ['deny', ['EXECUTE'], 42],
        ['deny', ['ALTER'], 41],
      ],
    );
  });
});

describe('command stages: every statement tagged', () => {
  it('tags each statement of a multi-statement text after the whitespace its ";" leaves', () => {
    const sql = "UPDATE t SET a = ';';\n  SELECT 2 ; /* c */ DELETE FROM t";
    const sent = untraced(session({ multiStatements: true }).send(Command.QUERY, sql));
    assert.equal(sent, `${HEAD}*/ UPDATE t SET a = ';';\n  ${HEAD}*/ SELECT 2 ; ${HEAD}*/ /* c */ DELETE FROM t`);
    assert.equal(untraced(session().send(Command.QUERY, sql)), `${HEAD}*/ ${sql}`, 'without multi-statements only the first runs');
  });

  it('gives every tag of a text the same trace and the span meshgate reports for the command', () => {
    const s = session({ multiStatements: true });
    const sent = s.send(Command.QUERY, 'SELECT 1; SELECT 2');
    const parents = [...sent.matchAll(/traceparent='00-([0-9a-f]{32})-([0-9a-f]{16})-01'/g)];
    assert.equal(parents.length, 2);
    assert.equal(parents[0]![1], parents[1]![1]);
    assert.equal(parents[0]![2], parents[1]![2]);
    assert.equal(s.audited[0]!.spanId, parents[0]![2], 'the span tracing will start takes the id the tags name');
  });

  it('tags the statements of a text past 64 KiB, the DEFINER change included', () => {
    const comment = `/*${'x'.repeat(70 * 1024)}*/`;
    const sent = untraced(session({ multiStatements: true }).send(Command.QUERY, `SELECT 1 ${comment}; CREATE VIEW v AS SELECT 1`));
    assert.equal(sent, `${HEAD}*/ SELECT 1 ${comment}; ${HEAD}*/ CREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT 1`);
  });
});

describe('command stages: what the audit records of a statement', () => {
  it('records the prefix, the marker, the whole length and hash, and every verb', () => {
    const s = session({ multiStatements: true, statementBytes: 16 });
    const sql = 'SELECT 1; DELETE FROM t WHERE id = 2';
    s.send(Command.QUERY, sql);
    const [facts] = s.audited;
    assert.equal(facts!.statement, sql.slice(0, 16));
    assert.equal(facts!.truncated, true);
    assert.equal(facts!.statementBytes, sql.length);
    assert.equal(facts!.statementSha256, createHash('sha256').update(sql).digest('hex'));
    assert.deepEqual(facts!.verbs, ['SELECT', 'DELETE']);
    assert.equal(facts!.verb, 'SELECT');
  });

  it('records an execution with its prepared statement\'s facts, by id and as the last prepared', () => {
    const s = session();
    const sql = 'UPDATE t SET a = ? WHERE id = ?';
    s.send(Command.STMT_PREPARE, sql, 5);
    const execute = (id: number) => {
      const body = Buffer.alloc(9);
      body.writeUInt32LE(id, 0);
      body.writeUInt32LE(1, 5);
      return body;
    };
    s.send(Command.STMT_EXECUTE, execute(5));
    s.send(Command.STMT_PREPARE, 'SELECT 1', 6);
    s.send(Command.STMT_EXECUTE, execute(0xffffffff));
    const [, byId, , last] = s.audited;
    assert.equal(byId!.command, 'execute');
    assert.deepEqual([byId!.statement, byId!.verbs, byId!.statementBytes], [sql, ['UPDATE'], sql.length]);
    assert.deepEqual([last!.statement, last!.verbs], ['SELECT 1', ['SELECT']]);
  });

  it('records nothing of the kind for commands without SQL', () => {
    const s = session();
    s.send(Command.RESET_CONNECTION, '');
    assert.deepEqual([s.audited[0]!.verbs, s.audited[0]!.statementBytes, s.audited[0]!.statementSha256, s.audited[0]!.truncated], [[], null, null, false]);
  });
});
