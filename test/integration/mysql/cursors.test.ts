/**
 * Server-side cursors through meshgate against the real MariaDB: COM_STMT_EXECUTE with
 * CURSOR_TYPE_READ_ONLY and COM_STMT_FETCH, spoken by hand (no Node driver opens cursors),
 * with and without CLIENT_DEPRECATE_EOF. Every answer MariaDB gives — a cursor opened, one
 * that fails after its metadata went out, rows fetched to the last, fetch errors, a CALL or
 * an INSERT that ignores the flag — must leave the session in step: the command pipelined
 * behind it gets its own answer. Rows read through a cursor are audited, per fetch.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ServerStatus } from '../../../src/engines/mysql/codec/constants.ts';
import { connectAdmin, ident } from '../../../src/demo/provision.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { command, openRawSession, type Answer, type Prepared, type RawSession } from '../../helpers/raw-mysql.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

type Event = Record<string, unknown> & { type: string; command: string; statement: string | null; traceId: string; rowsReturned: number; error: { code: string | number } | null };

function prepared(answer: Prepared | Answer): Prepared {
  assert.equal(answer.kind, 'prepared', `prepare failed: ${JSON.stringify(answer)}`);
  return answer as Prepared;
}

/** The text row of `SELECT <n>`: one length-encoded value. */
function assertAnswers(answer: Answer, value: string, what: string): void {
  assert.equal(answer.kind, 'rows', `${what}: ${JSON.stringify(answer)}`);
  const row = (answer as Extract<Answer, { kind: 'rows' }>).values[0]![0]!;
  assert.equal(row.toString('latin1', 1), value, `${what} got its own answer`);
}

function assertError(answer: Answer, code: number, what: string): void {
  assert.equal(answer.kind, 'error', `${what}: ${JSON.stringify(answer)}`);
  assert.equal((answer as Extract<Answer, { kind: 'error' }>).code, code, `${what}: ${JSON.stringify(answer)}`);
}

describe('cursors through meshgate', { skip: missing }, () => {
  let h: Harness;
  const sessions: RawSession[] = [];
  const open = async (deprecateEof: boolean) => {
    const s = await openRawSession({ port: h.port, database: h.database, ssl: h.ssl('orders'), deprecateEof });
    sessions.push(s);
    return s;
  };
  const events = async (table: string) => (await h.readAudit()).filter((e): e is Event => e.type === 'statement' && typeof e.statement === 'string' && e.statement.includes(table));

  before(async () => {
    h = await startHarness({
      name: 'cursors',
      workloads: STANDARD_WORKLOADS,
      setupSql: [
        'CREATE TABLE {db}.nums (a INT PRIMARY KEY)',
        'INSERT INTO {db}.nums VALUES (1), (2), (3), (4)',
        'CREATE PROCEDURE {db}.two_sets() BEGIN SELECT 1 AS x; SELECT 2 AS y UNION SELECT 3; END',
      ],
    });
    const root = await connectAdmin(MARIADB);
    try {
      await root.query(`GRANT EXECUTE ON ${ident(h.database)}.* TO ${ident(h.roles.rw)}`);
    } finally {
      await root.end();
    }
  });
  after(async () => cleanup(...sessions.map((s) => () => s.close()), () => h?.stop()));

  for (const deprecateEof of [false, true]) {
    const mode = `DEPRECATE_EOF=${deprecateEof}`;

    it(`a cursor that fails to open leaves the session in step, whatever failed (${mode})`, async () => {
      const s = await open(deprecateEof);
      s.send(command.query("SET SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO'"));
      assert.equal((await s.readResult(false)).kind, 'ok');
      const table = `fail_${deprecateEof ? 1 : 0}`;
      s.send(command.query(`CREATE TABLE ${table} (a INT)`), command.query(`INSERT INTO ${table} VALUES (1), (2)`));
      assert.equal((await s.readResult(false)).kind, 'ok');
      assert.equal((await s.readResult(false)).kind, 'ok');
      const cases = [
        // MariaDB sends the column metadata, then materialising the cursor fails: an ERR
        // takes the place of the EOF that would have ended the metadata.
        { what: 'a subquery returning more than one row', sql: `SELECT (SELECT a FROM ${table}) AS x`, code: 1242 },
        { what: 'a subquery failing on a later row', sql: `SELECT a, (SELECT b.a FROM ${table} b WHERE b.a <= t.a) AS x FROM ${table} t`, code: 1242 },
        { what: 'division by zero under strict mode', sql: `INSERT INTO ${table} SELECT 1/0`, code: 1365 },
        { what: 'a table dropped between prepare and execute', sql: `SELECT a FROM ${table}_gone`, code: 1146, before: `CREATE TABLE ${table}_gone (a INT)`, after: `DROP TABLE ${table}_gone` },
      ];
      for (const [i, c] of cases.entries()) {
        if (c.before !== undefined) {
          s.send(command.query(c.before));
          assert.equal((await s.readResult(false)).kind, 'ok');
        }
        s.send(command.prepare(c.sql));
        const stmt = prepared(await s.readPrepare());
        if (c.after !== undefined) {
          s.send(command.query(c.after));
          assert.equal((await s.readResult(false)).kind, 'ok');
        }
        // Pipelined: the failing execute, a fetch from the cursor that never opened, a query.
        s.send(command.execute(stmt.id, true), command.fetch(stmt.id, 2), command.query(`SELECT ${100 + i}`));
        assertError(await s.readResult(true), c.code, `${c.what}: execute`);
        assertError(await s.readFetch(), 1421, `${c.what}: fetch with no cursor open`);
        assertAnswers(await s.readResult(false), String(100 + i), `${c.what}: the query behind it`);
      }
      const audit = await events(table);
      const executes = audit.filter((e) => e.command === 'execute');
      assert.deepEqual(
        executes.map((e) => e.error?.code),
        cases.map((c) => c.code),
        'each failed execute is audited with its error',
      );
      assert.equal(audit.filter((e) => e.command === 'fetch' && e.error?.code === 1421).length, cases.length, 'each failed fetch is audited with its error');
    });

    it(`reads a cursor to its last row, and the fetched rows are audited (${mode})`, async () => {
      const s = await open(deprecateEof);
      const sql = `SELECT a FROM nums WHERE a <= 4 /* read ${mode} */ ORDER BY a`;
      s.send(command.prepare(sql));
      const stmt = prepared(await s.readPrepare());
      s.send(command.execute(stmt.id, true));
      const opened = await s.readResult(true);
      assert.equal(opened.kind, 'cursor', JSON.stringify(opened));
      // 4 rows: 1, 2, 1, then a fetch that finds the end (no rows, LAST_ROW_SENT), then none open.
      s.send(command.fetch(stmt.id, 1), command.fetch(stmt.id, 2), command.fetch(stmt.id, 1), command.fetch(stmt.id, 5), command.fetch(stmt.id, 1), command.query('SELECT 7'));
      const fetched: number[] = [];
      for (const expected of [1, 2, 1, 0]) {
        const answer = await s.readFetch();
        assert.equal(answer.kind, 'rows', JSON.stringify(answer));
        const { rows, status } = answer as Extract<Answer, { kind: 'rows' }>;
        assert.deepEqual(rows, [expected]);
        fetched.push(status & (ServerStatus.CURSOR_EXISTS | ServerStatus.LAST_ROW_SENT));
      }
      assert.deepEqual(fetched, [ServerStatus.CURSOR_EXISTS, ServerStatus.CURSOR_EXISTS, ServerStatus.CURSOR_EXISTS, ServerStatus.LAST_ROW_SENT]);
      assertError(await s.readFetch(), 1421, 'fetch after the last row');
      assertAnswers(await s.readResult(false), '7', 'the query behind the fetches');

      const audit = await events(`read ${mode}`);
      const execute = audit.find((e) => e.command === 'execute');
      assert.ok(execute !== undefined, 'the execute is audited');
      const fetches = audit.filter((e) => e.command === 'fetch');
      assert.deepEqual(
        fetches.map((e) => e.rowsReturned),
        [1, 2, 1, 0, 0],
        'one event per COM_STMT_FETCH, with the rows it returned',
      );
      assert.equal(fetches.reduce((sum, e) => sum + e.rowsReturned, 0), 4, 'every row read through the cursor is counted');
      for (const f of fetches) {
        assert.equal(f.statement, sql, 'a fetch names the prepared statement');
        assert.equal(f.traceId, execute.traceId, "a fetch carries its execute's trace id");
        assert.equal(f['verb'], 'SELECT');
      }
      assert.equal(fetches.at(-1)!.error?.code, 1421);
    });

    it(`fetch errors (unknown statement, no cursor, after reset, after close) keep the session in step (${mode})`, async () => {
      const s = await open(deprecateEof);
      s.send(command.prepare(`SELECT a FROM nums WHERE a <= 4 /* errors ${mode} */`));
      const stmt = prepared(await s.readPrepare());
      s.send(
        command.fetch(0x7fff0001, 1),
        command.execute(stmt.id, false),
        command.fetch(stmt.id, 1),
        command.execute(stmt.id, true),
        command.reset(stmt.id),
        command.fetch(stmt.id, 1),
        command.close(stmt.id),
        command.fetch(stmt.id, 1),
        command.query('SELECT 8'),
      );
      assertError(await s.readFetch(), 1243, 'fetch from an unknown statement');
      const plain = await s.readResult(false);
      assert.deepEqual(plain.kind === 'rows' && plain.rows, [4], 'an execute without a cursor sends its rows');
      assertError(await s.readFetch(), 1421, 'fetch with no cursor open');
      assert.equal((await s.readResult(true)).kind, 'cursor');
      assert.equal((await s.readSingle()).kind, 'ok', 'COM_STMT_RESET closes the cursor');
      assertError(await s.readFetch(), 1421, 'fetch after reset');
      assertError(await s.readFetch(), 1243, 'fetch after close');
      assertAnswers(await s.readResult(false), '8', 'the query behind the errors');
    });

    it(`a CALL and an INSERT executed with the cursor flag answer in full (${mode})`, async () => {
      const s = await open(deprecateEof);
      const insert = `INSERT INTO nums VALUES (${deprecateEof ? 11 : 10})`;
      s.send(command.prepare('CALL two_sets()'), command.prepare(insert));
      const call = prepared(await s.readPrepare());
      const ins = prepared(await s.readPrepare());
      s.send(command.execute(call.id, true), command.execute(ins.id, true), command.fetch(call.id, 1), command.query('SELECT 9'));
      const sets = await s.readResult(true);
      assert.equal(sets.kind, 'rows', JSON.stringify(sets));
      assert.deepEqual((sets as Extract<Answer, { kind: 'rows' }>).rows, [1, 2], 'both result sets, rows sent at once');
      const inserted = await s.readResult(true);
      assert.equal(inserted.kind, 'ok', JSON.stringify(inserted));
      assert.equal((inserted as Extract<Answer, { kind: 'ok' }>).affectedRows, 1);
      assertError(await s.readFetch(), 1421, 'no cursor was opened by the CALL');
      assertAnswers(await s.readResult(false), '9', 'the query behind them');
    });
  }
});
