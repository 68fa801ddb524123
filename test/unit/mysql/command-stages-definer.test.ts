/**
 * The command stages give what a statement creates to the session's role: the bytes MariaDB
 * gets, per command and per multi-statement state, while the audit keeps the client's text.
 * The stages run on stand-ins for the engine context and the session's grant.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from '../../../src/engines/mysql/codec/constants.ts';
import { stagesSession } from './command-stages-helpers.ts';

function session(options: { multiStatements?: boolean; tagStatements?: boolean } = {}) {
  const { forward, audited } = stagesSession({ ...options, tagStatements: options.tagStatements ?? false });
  /** What goes upstream for a command: the statement's bytes after the command byte. */
  const send = (code: number, body: Buffer | string): Buffer => {
    const payload = forward(code, body, code === Command.STMT_PREPARE ? 1 : null);
    assert.equal(payload[0], code);
    return payload.subarray(1);
  };
  const setOption = (option: number) => send(Command.SET_OPTION, Buffer.of(option, 0));
  return { send, setOption, audited };
}

describe('command stages: DEFINER of what a statement creates', () => {
  it('sends COM_QUERY with the role as definer and audits what the client sent', () => {
    const s = session();
    assert.equal(s.send(Command.QUERY, 'CREATE VIEW v AS SELECT 1').toString(), 'CREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT 1');
    assert.equal(s.send(Command.QUERY, 'SELECT 1').toString(), 'SELECT 1');
    assert.deepEqual(s.audited.map((f) => ({ command: f.command, statement: f.statement })), [
      { command: 'query', statement: 'CREATE VIEW v AS SELECT 1' },
      { command: 'query', statement: 'SELECT 1' },
    ]);
  });

  it('keeps every byte it does not change, in a statement that is not UTF-8', () => {
    const latin1 = Buffer.concat([Buffer.from("CREATE VIEW v AS SELECT '"), Buffer.of(0xe9), Buffer.from("'")]);
    const expected = Buffer.concat([Buffer.from("CREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT '"), Buffer.of(0xe9), Buffer.from("'")]);
    assert.deepEqual(session().send(Command.QUERY, latin1), expected);
  });

  it('edits later statements only while MariaDB runs them: the login capability, then COM_SET_OPTION', () => {
    const text = 'SELECT 1; CREATE VIEW v AS SELECT 1';
    const multi = 'SELECT 1; CREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT 1';
    assert.equal(session({ multiStatements: true }).send(Command.QUERY, text).toString(), multi);
    const s = session();
    assert.equal(s.send(Command.QUERY, text).toString(), text);
    s.setOption(0); // MYSQL_OPTION_MULTI_STATEMENTS_ON
    assert.equal(s.send(Command.QUERY, text).toString(), multi);
    s.setOption(1); // MYSQL_OPTION_MULTI_STATEMENTS_OFF
    assert.equal(s.send(Command.QUERY, text).toString(), text);
    s.setOption(7); // not an option MariaDB knows: it refuses, nothing changes
    assert.equal(s.send(Command.QUERY, text).toString(), text);
  });

  it('edits the one statement of COM_STMT_PREPARE, whatever the multi-statement state', () => {
    const s = session({ multiStatements: true });
    assert.equal(s.send(Command.STMT_PREPARE, 'CREATE VIEW v AS SELECT 1').toString(), 'CREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT 1');
    assert.equal(s.send(Command.STMT_PREPARE, 'SELECT 1; CREATE VIEW v AS SELECT 1').toString(), 'SELECT 1; CREATE VIEW v AS SELECT 1');
    assert.deepEqual(s.audited.map((e) => e.statement), ['CREATE VIEW v AS SELECT 1', 'SELECT 1; CREATE VIEW v AS SELECT 1']);
  });

  it('tags the statement as it goes upstream, definer and all', () => {
    const sent = session({ tagStatements: true }).send(Command.QUERY, 'CREATE DEFINER=CURRENT_USER VIEW v AS SELECT 1').toString();
    assert.ok(sent.endsWith("*/ CREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT 1"), sent);
    assert.match(sent, /^\/\*meshgate_identity='spiffe%3A%2F%2Ftest\.local%2Fns%2Fshop%2Fsa%2Forders',meshgate_role='shop_writer',traceparent='00-/);
  });
});
