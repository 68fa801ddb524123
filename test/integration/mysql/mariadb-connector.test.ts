/**
 * MariaDB's own Node.js connector through meshgate against the real MariaDB. It takes
 * protocol paths mysql2 does not: CLIENT_DEPRECATE_EOF, MariaDB's extended capabilities,
 * pipelined commands, COM_STMT_EXECUTE with statement id 0xFFFFFFFF right behind its
 * COM_STMT_PREPARE, COM_STMT_BULK_EXECUTE for batch() and COM_RESET_CONNECTION.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mariadb, { type Connection, type ConnectionConfig, type SqlError } from 'mariadb';
import type { Connection as AdminConnection } from 'mysql2/promise';
import { connectAdmin } from '../../../src/demo/provision.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, withMaxAllowedPacket, type Harness } from '../../helpers/meshgate.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

type Row = Record<string, unknown>;
type Upsert = { affectedRows: number; insertId: bigint | number; warningStatus: number };
type StatementEvent = {
  type: 'statement';
  command: string;
  statement: string | null;
  traceId: string;
  upstreamConnectionId: number;
  rowsReturned: number;
  rowsAffected: number;
  error: { code: string | number } | null;
};

describe('mariadb connector through meshgate', { skip: missing }, () => {
  let h: Harness;
  const connect = (workload: string, extra: Partial<ConnectionConfig> = {}) =>
    mariadb.createConnection({
      host: '127.0.0.1',
      port: h.port,
      user: 'ignored',
      database: h.database,
      ssl: h.ssl(workload),
      connectTimeout: 5000,
      ...extra,
    });
  /** MariaDB's id for the upstream connection, which names this session in the audit. */
  const upstreamId = async (conn: Connection) => Number(((await conn.query('SELECT CONNECTION_ID() AS id')) as Row[])[0]!.id);
  const statementsOf = async (connectionId: number) =>
    (await h.readAudit()).filter((e): e is StatementEvent & Row => e.type === 'statement' && e.upstreamConnectionId === connectionId);

  let admin: AdminConnection;
  /** What MariaDB's processlist says the upstream connection is doing; null once it is gone. */
  const threadState = async (connectionId: number) => {
    const [rows] = await admin.query('SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = ?', [connectionId]);
    const row = (rows as Row[])[0];
    return row === undefined ? null : String(row.STATE);
  };
  const waitFor = async (what: string, check: () => Promise<boolean>, timeoutMs = 5000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };

  before(async () => {
    admin = await connectAdmin(MARIADB);
    h = await startHarness({
      name: 'mdbconn',
      workloads: STANDARD_WORKLOADS,
      setupSql: [
        'CREATE TABLE {db}.orders (id INT PRIMARY KEY AUTO_INCREMENT, item VARCHAR(100), qty INT, payload LONGBLOB)',
        'CREATE TABLE {db}.bulk (id INT PRIMARY KEY, name VARCHAR(50), amount DECIMAL(10,2))',
      ],
    });
  });
  after(async () => {
    await cleanup(
      () => admin?.end(),
      () => h?.stop(),
    );
  });

  it('runs text queries: rows, affected rows, role', async () => {
    const conn = await connect('orders');
    try {
      const insert = (await conn.query("INSERT INTO orders (item, qty) VALUES ('apple', 3), ('pear', 5)")) as Upsert;
      assert.equal(insert.affectedRows, 2);
      const rows = (await conn.query('SELECT item, qty FROM orders ORDER BY id')) as Row[];
      assert.deepEqual(rows.map((r) => [r.item, r.qty]), [['apple', 3], ['pear', 5]]);
      const who = (await conn.query('SELECT CURRENT_USER() AS u, CURRENT_ROLE() AS r')) as Row[];
      assert.match(String(who[0]!.u), new RegExp(`^mg_${h.roles.rw}@`));
      assert.equal(who[0]!.r, h.roles.rw);
      const withParams = (await conn.query('SELECT ? AS a, ? AS b', [1, 'two'])) as Row[];
      assert.deepEqual({ ...withParams[0] }, { a: 1, b: 'two' });
    } finally {
      await conn.end();
    }
  });

  it('runs prepared statements: repeated, with parameters, 50 pipelined at once', async () => {
    const conn = await connect('orders');
    try {
      for (let i = 0; i < 3; i++) {
        const rows = (await conn.execute('SELECT ? + 1 AS n, ? AS s', [i, `v${i}`])) as Row[];
        assert.deepEqual([Number(rows[0]!.n), rows[0]!.s], [i + 1, `v${i}`]);
      }
      const res = (await conn.execute('INSERT INTO orders (item, qty) VALUES (?, ?)', ['plum', 7])) as Upsert;
      assert.equal(res.affectedRows, 1);
      // Distinct SQL texts, so each is a fresh PREPARE followed at once by EXECUTE(-1).
      const all = await Promise.all(
        Array.from({ length: 50 }, (_, i) => conn.execute(`SELECT ? AS i, ${i} AS k`, [i * 2]) as Promise<Row[]>),
      );
      assert.deepEqual(
        all.map((rows) => [Number(rows[0]!.i), Number(rows[0]!.k)]),
        Array.from({ length: 50 }, (_, i) => [i * 2, i]),
      );
      // And the same statement 50 times at once: one PREPARE, then the cached id.
      const same = await Promise.all(Array.from({ length: 50 }, (_, i) => conn.execute('SELECT ? AS v', [i]) as Promise<Row[]>));
      assert.deepEqual(same.map((rows) => Number(rows[0]!.v)), Array.from({ length: 50 }, (_, i) => i));
      // Each pipelined EXECUTE (statement id -1) is audited with the SQL prepared just before it.
      const events = await statementsOf(await upstreamId(conn));
      for (let i = 0; i < 50; i++) {
        const about = events.filter((e) => e.statement === `SELECT ? AS i, ${i} AS k`);
        assert.deepEqual(about.map((e) => [e.command, e.rowsReturned]), [['prepare', 0], ['execute', 1]], `statement ${i}`);
      }
      assert.equal(events.filter((e) => e.statement === 'SELECT ? AS v' && e.command === 'execute').length, 50);
    } finally {
      await conn.end();
    }
  });

  it('inserts 1000 rows with batch() (COM_STMT_BULK_EXECUTE)', async () => {
    const conn = await connect('orders');
    try {
      const values = Array.from({ length: 1000 }, (_, i) => [i + 1, `name-${i}`, (i * 1.5).toFixed(2)]);
      const res = (await conn.batch('INSERT INTO bulk (id, name, amount) VALUES (?, ?, ?)', values)) as Upsert | Upsert[];
      const affected = Array.isArray(res) ? res.reduce((sum, r) => sum + r.affectedRows, 0) : res.affectedRows;
      assert.equal(affected, 1000);
      const count = (await conn.query('SELECT COUNT(*) AS n, SUM(id) AS s FROM bulk')) as Row[];
      assert.equal(Number(count[0]!.n), 1000);
      assert.equal(Number(count[0]!.s), 500500);
      const one = (await conn.execute('SELECT name, amount FROM bulk WHERE id = ?', [500])) as Row[];
      assert.equal(one[0]!.name, 'name-499');
      assert.equal(String(one[0]!.amount), '748.50');
      const bulk = (await statementsOf(await upstreamId(conn))).filter((e) => e.command === 'bulk_execute');
      assert.equal(bulk.length, 1, 'batch() went as one COM_STMT_BULK_EXECUTE');
      assert.equal(bulk[0]!.statement, 'INSERT INTO bulk (id, name, amount) VALUES (?, ?, ?)');
      assert.equal(bulk[0]!.rowsAffected, 1000);
    } finally {
      await conn.end();
    }
  });

  it('keeps transactions: rollback discards, commit keeps', async () => {
    const conn = await connect('orders');
    try {
      await conn.beginTransaction();
      await conn.query("INSERT INTO orders (item, qty) VALUES ('ghost', 1)");
      await conn.rollback();
      await conn.beginTransaction();
      await conn.execute('INSERT INTO orders (item, qty) VALUES (?, ?)', ['kept', 1]);
      await conn.commit();
      const rows = (await conn.query("SELECT item FROM orders WHERE item IN ('ghost', 'kept')")) as Row[];
      assert.deepEqual(rows.map((r) => r.item), ['kept']);
    } finally {
      await conn.end();
    }
  });

  it('returns several result sets from multi-statements', async () => {
    const conn = await connect('orders', { multipleStatements: true });
    try {
      const results = (await conn.query("SELECT 1 AS a; SELECT 2 AS b, 3 AS c; UPDATE orders SET qty = qty WHERE item = 'none'; SELECT 4 AS d")) as unknown[];
      assert.equal(results.length, 4);
      assert.deepEqual({ ...(results[0] as Row[])[0] }, { a: 1 });
      assert.deepEqual({ ...(results[1] as Row[])[0] }, { b: 2, c: 3 });
      assert.equal((results[2] as Upsert).affectedRows, 0);
      assert.deepEqual({ ...(results[3] as Row[])[0] }, { d: 4 });
      const after = (await conn.query('SELECT 5 AS e')) as Row[];
      assert.equal(after[0]!.e, 5);
    } finally {
      await conn.end();
    }
  });

  it('relays MariaDB errors intact and the session goes on', async () => {
    const conn = await connect('orders');
    try {
      await assert.rejects(conn.query('SELEC 1'), (e: SqlError) => {
        assert.equal(e.errno, 1064);
        assert.equal(e.sqlState, '42000');
        assert.match(String(e.sqlMessage), /^You have an error in your SQL syntax/);
        assert.equal(e.fatal, false);
        return true;
      });
      await assert.rejects(conn.execute('SELECT * FROM no_such_table WHERE id = ?', [1]), (e: SqlError) => {
        assert.equal(e.errno, 1146);
        assert.equal(e.sqlState, '42S02');
        assert.match(String(e.sqlMessage), /no_such_table' doesn't exist/);
        return true;
      });
      const rows = (await conn.query('SELECT 42 AS answer')) as Row[];
      assert.equal(rows[0]!.answer, 42);
      // Pipelined behind a failing statement, the next one still gets its own answer.
      const [bad, good] = await Promise.allSettled([conn.query('SELECT nope FROM dual'), conn.query('SELECT 43 AS answer')]);
      assert.equal(bad.status, 'rejected');
      assert.equal(good.status === 'fulfilled' && (good.value as Row[])[0]!.answer, 43);
    } finally {
      await conn.end();
    }
  });

  it('conn.reset() (COM_RESET_CONNECTION) clears session state and keeps the role', async () => {
    const conn = await connect('orders');
    try {
      await conn.query('SET @x = 1');
      assert.equal(Number(((await conn.query('SELECT @x AS x')) as Row[])[0]!.x), 1);
      const before = (await conn.execute('SELECT ? AS v', [1])) as Row[];
      assert.equal(Number(before[0]!.v), 1);
      await conn.reset();
      const rows = (await conn.query('SELECT @x AS x, CURRENT_ROLE() AS r, DATABASE() AS db')) as Row[];
      assert.equal(rows[0]!.x, null);
      assert.equal(rows[0]!.r, h.roles.rw);
      assert.equal(rows[0]!.db, h.database);
      // Prepared statements were dropped by the server; the connector prepares again.
      const again = (await conn.execute('SELECT ? AS v', [2])) as Row[];
      assert.equal(Number(again[0]!.v), 2);
      await conn.ping();
    } finally {
      await conn.end();
    }
  });

  it('a read-only identity keeps its role across reset and cannot write', async () => {
    const conn = await connect('analytics');
    try {
      await conn.reset();
      const rows = (await conn.query('SELECT CURRENT_ROLE() AS r')) as Row[];
      assert.equal(rows[0]!.r, h.roles.ro);
      await assert.rejects(conn.query("INSERT INTO orders (item, qty) VALUES ('no', 1)"), (e: SqlError) => e.errno === 1142);
      await assert.rejects(
        conn.batch('INSERT INTO bulk (id, name, amount) VALUES (?, ?, ?)', [[5001, 'x', 1], [5002, 'y', 2]]),
        (e: SqlError) => e.errno === 1142,
      );
    } finally {
      await conn.end();
    }
  });

  it('pings', async () => {
    const conn = await connect('analytics');
    try {
      await conn.ping();
      await conn.ping();
      assert.equal(Number(((await conn.query('SELECT 1 AS one')) as Row[])[0]!.one), 1);
    } finally {
      await conn.end();
    }
  });

  it('a pool of 16 connections runs 200 concurrent queries', async () => {
    const pool = mariadb.createPool({
      host: '127.0.0.1',
      port: h.port,
      user: 'x',
      database: h.database,
      ssl: h.ssl('analytics'),
      connectionLimit: 16,
      minimumIdle: 0,
      acquireTimeout: 20_000,
    });
    try {
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? pool.query('SELECT ? AS i', [i]) : pool.execute('SELECT ? AS i', [i])) as Promise<Row[]>),
      );
      assert.deepEqual(results.map((rows) => Number(rows[0]!.i)), Array.from({ length: 200 }, (_, i) => i));
    } finally {
      await pool.end();
    }
  });

  it('moves rows and statements larger than 16 MiB both ways', async () => {
    const restorePacketLimit = await withMaxAllowedPacket(64 * 1024 * 1024);
    // Pooled upstream connections keep the limit they logged in with.
    h.meshgate.pool.drain();
    let conn: Connection | undefined;
    const size = 20 * 1024 * 1024;
    try {
      conn = await connect('orders');
      const blob = Buffer.alloc(size, 0x5a);
      blob[size - 1] = 0x21;
      const res = (await conn.execute('INSERT INTO orders (item, qty, payload) VALUES (?, ?, ?)', ['big', 1, blob])) as Upsert;
      assert.equal(res.affectedRows, 1);
      const textInsert = (await conn.query('INSERT INTO orders (item, qty, payload) VALUES (?, ?, ?)', ['big2', 2, blob])) as Upsert;
      assert.equal(textInsert.affectedRows, 1);
      const rows = (await conn.query("SELECT payload FROM orders WHERE item = 'big'")) as Row[];
      const got = rows[0]!.payload as Buffer;
      assert.equal(got.length, size);
      assert.equal(got[size - 1], 0x21);
      const binary = (await conn.execute('SELECT payload, qty FROM orders WHERE item = ?', ['big2'])) as Row[];
      assert.equal((binary[0]!.payload as Buffer).length, size);
      assert.equal(binary[0]!.qty, 2);
      const text = (await conn.query(`SELECT REPEAT('y', ${size}) AS s, 1 AS after_it`)) as Row[];
      assert.equal((text[0]!.s as string).length, size);
      assert.equal(text[0]!.after_it, 1);
      const small = (await conn.query('SELECT 7 AS seven')) as Row[];
      assert.equal(small[0]!.seven, 7);
    } finally {
      await conn?.end();
      await restorePacketLimit();
    }
  });

  it('conn.changeUser resets the session but keeps its identity, and cannot change database or character set', async () => {
    type ChangeUser = Parameters<Connection['changeUser']>[0];
    const conn = await connect('analytics');
    try {
      await conn.query('SET @left_behind = 1');
      await conn.changeUser({ user: 'root', password: '' });
      const rows = (await conn.query('SELECT CURRENT_ROLE() AS r, @left_behind AS v, DATABASE() AS db')) as Row[];
      assert.deepEqual([rows[0]!.r, rows[0]!.v, rows[0]!.db], [h.roles.ro, null, h.database]);
      // A failed COM_CHANGE_USER ends the connection, in the connector as in MariaDB.
      await assert.rejects(conn.changeUser({ user: 'root', password: '', database: 'information_schema' }), (e: SqlError) => {
        assert.match(e.message, /\[MG_COMMAND_FORBIDDEN\].*COM_INIT_DB/);
        assert.equal(e.errno, 1227);
        return true;
      });
    } finally {
      await conn.destroy();
    }
    // The connector logs in with utf8mb4_unicode_ci and asks the server's default collation in
    // COM_CHANGE_USER: the same character set passes; another one is refused.
    const other = await connect('analytics');
    try {
      await other.changeUser({ user: 'root', password: '' });
      const rows = (await other.query("SELECT CURRENT_ROLE() AS r, CHARSET('x') AS cs")) as Row[];
      assert.deepEqual([rows[0]!.r, rows[0]!.cs], [h.roles.ro, 'utf8mb4']);
      await assert.rejects(other.changeUser({ user: 'root', password: '', charset: 'latin1' } as ChangeUser), /\[MG_COMMAND_FORBIDDEN\].*SET NAMES/);
    } finally {
      await other.destroy();
    }
  });

  it('conn.destroy() during a long query kills it upstream (KILL <id from the handshake>)', async () => {
    const conn = await connect('orders');
    const id = await upstreamId(conn);
    const running = conn.query('SELECT SLEEP(30)').then(
      () => null,
      (e: SqlError) => e,
    );
    await waitFor('the query to run', async () => (await threadState(id)) === 'User sleep');
    const started = Date.now();
    conn.destroy();
    const error = await running;
    assert.equal(error?.code, 'ER_CMD_NOT_EXECUTED_DESTROYED');
    // The connector opened a second connection and sent `KILL <threadId>`; threadId is
    // meshgate's own id, which must reach MariaDB as the upstream connection's id.
    await waitFor('the upstream connection to be killed', async () => (await threadState(id)) === null);
    assert.ok(Date.now() - started < 5000);
    const kill = (await h.readAudit()).find((e) => e.type === 'statement' && e.statement === `KILL ${conn.threadId}`);
    assert.ok(kill, 'the KILL is audited as the client sent it');
    assert.equal(kill.error, null);
  });

  it('KILL QUERY <handshake id> interrupts a statement of the same identity; another identity is refused', async () => {
    const victim = await connect('orders');
    const other = await connect('analytics');
    const killer = await connect('orders');
    try {
      const id = await upstreamId(victim);
      // Settled at once, so its rejection is never unhandled while the test goes on.
      const running = victim.query('SELECT SLEEP(30) AS s').then(
        () => null,
        (e: SqlError) => e,
      );
      await waitFor('the query to run', async () => (await threadState(id)) === 'User sleep');
      await assert.rejects(other.query(`KILL QUERY ${victim.threadId}`), (e: SqlError) => {
        assert.match(e.message, /\[MG_POLICY_DENIED\]/);
        return true;
      });
      await assert.rejects(other.query(`KILL ${id}`), (e: SqlError) => /\[MG_POLICY_DENIED\]/.test(e.message));
      assert.equal(await threadState(id), 'User sleep');
      await killer.query(`/* client comment */ kill  QUERY ${victim.threadId};`);
      const interrupted = await running;
      assert.equal(interrupted?.errno, 1317);
      assert.equal(interrupted.sqlState, '70100');
      assert.equal(Number(((await victim.query('SELECT 2 AS two')) as Row[])[0]!.two), 2);
      // CONNECTION_ID() values name the same session and pass unchanged.
      await killer.query(`KILL QUERY ${id}`);
    } finally {
      await Promise.all([victim.end(), other.end(), killer.end()]);
    }
  });

  it('ends cleanly with COM_QUIT', async () => {
    const conn = await connect('analytics');
    const id = await upstreamId(conn);
    await conn.end();
    // end() resolves once COM_QUIT is written, maybe before meshgate has read it.
    let ends: Row[] = [];
    await waitFor('the session to end', async () => {
      const audit = await h.readAudit();
      // The newest: an upstream connection an earlier session handed back may have served others.
      const connection = audit.findLast((e) => e.type === 'connection' && e.upstreamConnectionId === id);
      assert.ok(connection, 'a connection event names the upstream connection');
      ends = audit.filter((e) => e.type === 'session_end' && e.sessionId === connection.sessionId);
      return ends.length > 0;
    });
    assert.equal(ends.length, 1);
    assert.equal(ends[0]!.reason, 'client quit');
  });

  it('audits one event per statement, with rows, prepared SQL and carried trace ids', async () => {
    const conn = await connect('orders', { multipleStatements: true });
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    let id: number;
    try {
      id = await upstreamId(conn);
      await conn.query("INSERT INTO orders (item, qty) VALUES ('audit-a', 1), ('audit-b', 2), ('audit-c', 3)");
      await conn.query("SELECT item FROM orders WHERE item LIKE 'audit-%'");
      await conn.execute('SELECT item, qty FROM orders WHERE item LIKE ? ORDER BY id', ['audit-%']);
      await conn.execute('SELECT item, qty FROM orders WHERE item LIKE ? ORDER BY id', ['audit-a']);
      await conn.execute("UPDATE orders SET qty = qty + 1 WHERE item LIKE 'audit-%' AND qty < ?", [3]);
      await conn.query(`SELECT 'traced' AS t /*traceparent='00-${traceId}-00f067aa0ba902b7-01'*/`);
      await conn.query('SELECT 1 AS a; SELECT 2 AS b UNION SELECT 3');
      await assert.rejects(conn.query('SELEC 2'));
    } finally {
      await conn.end();
    }
    const events = await statementsOf(id);
    const about = (text: string) => events.filter((e) => e.statement === text);

    const insert = about("INSERT INTO orders (item, qty) VALUES ('audit-a', 1), ('audit-b', 2), ('audit-c', 3)");
    assert.equal(insert.length, 1);
    assert.deepEqual([insert[0]!.command, insert[0]!.rowsAffected, insert[0]!.rowsReturned], ['query', 3, 0]);

    const select = about("SELECT item FROM orders WHERE item LIKE 'audit-%'");
    assert.equal(select.length, 1);
    assert.equal(select[0]!.rowsReturned, 3);

    // The prepare and each execute carry the prepared SQL text.
    const prepared = about('SELECT item, qty FROM orders WHERE item LIKE ? ORDER BY id');
    assert.deepEqual(prepared.map((e) => e.command).sort(), ['execute', 'execute', 'prepare']);
    assert.deepEqual(prepared.filter((e) => e.command === 'execute').map((e) => e.rowsReturned), [3, 1]);

    const update = about("UPDATE orders SET qty = qty + 1 WHERE item LIKE 'audit-%' AND qty < ?");
    assert.deepEqual(update.map((e) => e.command).sort(), ['execute', 'prepare']);
    assert.equal(update.find((e) => e.command === 'execute')!.rowsAffected, 2);

    const traced = events.filter((e) => e.statement?.startsWith("SELECT 'traced'"));
    assert.equal(traced.length, 1);
    assert.equal(traced[0]!.traceId, traceId);
    assert.equal(traced[0]!.rowsReturned, 1);

    const multi = about('SELECT 1 AS a; SELECT 2 AS b UNION SELECT 3');
    assert.equal(multi.length, 1);
    assert.equal(multi[0]!.rowsReturned, 3);

    const failed = about('SELEC 2');
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.error?.code, 1064);

    // Every other trace id is fresh and well-formed.
    for (const e of events) assert.match(e.traceId, /^[0-9a-f]{32}$/);
  });

  it('MariaDB sees who asked: the processlist shows the sqlcommenter tag', async () => {
    const conn = await connect('orders');
    try {
      const rows = (await conn.query('SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()')) as Row[];
      const info = String(rows[0]!.INFO);
      const encoded = encodeURIComponent(STANDARD_WORKLOADS.orders);
      assert.ok(info.includes(`meshgate_identity='${encoded}'`), info);
      assert.ok(info.includes(`meshgate_role='${h.roles.rw}'`), info);
      assert.match(info, /traceparent='00-[0-9a-f]{32}-[0-9a-f]{16}-01'/);
      // Prepared statements are tagged at PREPARE; the processlist shows it while executing.
      const prepared = (await conn.execute('SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID() AND ? = 1', [1])) as Row[];
      assert.ok(String(prepared[0]!.INFO).includes(`meshgate_identity='${encoded}'`), String(prepared[0]!.INFO));
    } finally {
      await conn.end();
    }
  });
});
