/**
 * A pooled upstream connection is, to the client, the session a fresh login would give it
 * now (issue 11, point 6), through meshgate against the real MariaDB: globals changed since
 * the connection opened, nothing a previous session left (variables, temporary tables,
 * prepared statements, transaction, locks, role, database, warnings, profiles), the settings
 * a login derives from the client's capabilities; and where a login would still differ
 * (init_connect, a changed max_allowed_packet) the session logs in afresh. Idle pooled
 * connections are recognisable in the processlist.
 *
 * Globals are changed through holdGlobal, so concurrent runs on the same server agree.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { connectAdmin } from '../../../src/demo/provision.ts';
import { holdGlobal, MARIADB, startHarness, STANDARD_WORKLOADS, unique, withMaxAllowedPacket, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

type Row = mysql.RowDataPacket;

/** The session-scoped status counters (SHOW SESSION STATUS also lists the global ones). */
const SESSION_STATUS =
  /^(Com_|Handler_|Select_|Sort_|Created_tmp_|Rows_|Feature_|Opened_(tables|table_definitions|views)$|Questions$|Empty_queries$|Last_query_cost$|Access_denied_errors$|Update_scan$|Delete_scan$)/;

/**
 * What a reused connection's counters show more than a login's: the one SET that restores
 * what the client's IGNORE_SPACE capability gives at a login (mysql2 asks for it; see
 * pool-exchange.ts). The bytes of the re-authentication differ too (Bytes_*, not compared).
 */
const ONE_MORE_STATEMENT = ['Com_set_option', 'Questions'];

describe('pooled connections are indistinguishable from fresh ones', { skip: missing }, () => {
  let h: Harness;
  const lock = unique('pool_lock');
  const connect = (database: string | null = h.database, extra: mysql.ConnectionOptions = {}) =>
    mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', ...(database === null ? {} : { database }), ssl: h.ssl('orders'), ...extra });
  const one = async <T extends Row>(conn: mysql.Connection, sql: string): Promise<T> => {
    const [rows] = await conn.query<Row[]>(sql);
    return rows[0] as T;
  };
  const connectionId = async (conn: mysql.Connection) => Number((await one(conn, 'SELECT CONNECTION_ID() AS id')).id);
  /** Ends a session and waits until its upstream connection is parked in the pool. */
  const endAndPark = async (conn: mysql.Connection) => {
    const before = h.meshgate.pool.stats.returned;
    await conn.end();
    for (let i = 0; i < 200 && h.meshgate.pool.stats.returned === before; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(h.meshgate.pool.stats.returned, before + 1, 'the connection went back to the pool');
  };

  before(async () => {
    h = await startHarness({
      name: 'pooltransp',
      workloads: STANDARD_WORKLOADS,
      credentials: 'dynamic',
      setupSql: ['CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(50))', 'CREATE TABLE {db}.counters (id INT AUTO_INCREMENT PRIMARY KEY, v INT)'],
    });
    const admin = await connectAdmin(MARIADB);
    try {
      await admin.query(`GRANT CREATE TEMPORARY TABLES ON \`${h.database}\`.* TO \`${h.roles.rw}\``);
    } finally {
      await admin.end();
    }
  });
  after(async () => {
    await h?.stop();
  });
  // Each test starts with no idle connection, so what it parks is what the next session gets.
  beforeEach(() => h.meshgate.pool.drain());

  it('a reused connection sees a global changed since it opened (SET GLOBAL long_query_time)', async () => {
    const first = await connect();
    const id = await connectionId(first);
    const opened = Number((await one(first, 'SELECT @@session.long_query_time AS v')).v);
    await endAndPark(first);
    const wanted = opened === 7 ? 8 : 7;
    const release = await holdGlobal('long_query_time', wanted);
    try {
      const second = await connect();
      try {
        assert.equal(await connectionId(second), id, 'the pooled connection was reused');
        assert.equal(Number((await one(second, 'SELECT @@session.long_query_time AS v')).v), wanted);
      } finally {
        await second.end();
      }
    } finally {
      await release();
    }
  });

  it('nothing a session leaves is visible to the next, which sees exactly what a fresh login sees', async () => {
    const first = await connect();
    const id = await connectionId(first);
    await first.query(
      "SET @leftover = 'secret', SESSION long_query_time = 3, SESSION sql_mode = 'ANSI', time_zone = '+05:00', NAMES latin1, " +
        "SESSION max_statement_time = 5, sql_select_limit = 3, lc_time_names = 'de_DE', profiling = 1, timestamp = 1000000, " +
        'insert_id = 77, SESSION wait_timeout = 123, SESSION net_write_timeout = 45, div_precision_increment = 9, autocommit = 0',
    );
    await first.query('SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE');
    await first.query('CREATE TEMPORARY TABLE leftover_tmp (a INT)');
    await first.query("PREPARE leftover_stmt FROM 'SELECT 1'");
    await first.query(`SELECT GET_LOCK('${lock}', 0)`);
    await first.query("SELECT 'x' + 0 AS warned");
    await first.query("SET SESSION optimizer_trace = 'enabled=on'");
    await first.query('SELECT COUNT(*) FROM items WHERE id > 0');
    await first.query("INSERT INTO items VALUES (99, 'uncommitted')");
    await first.query('INSERT INTO counters (v) VALUES (1)');
    await first.query('USE information_schema');
    // Even meshgate's own SELECTs on the connection would come back empty under this.
    await first.query('SET SESSION sql_select_limit = 0');
    await first.query('SET ROLE NONE');
    await endAndPark(first);

    const reused = await connect();
    const fresh = await connect();
    try {
      assert.equal(await connectionId(reused), id, 'the pooled connection was reused');
      assert.notEqual(await connectionId(fresh), id, 'the other session logged in afresh');
      const [r, f] = [await observe(reused), await observe(fresh)];
      assert.deepEqual(r.state, f.state);
      assert.equal(r.state.role, h.roles.rw, 'the default role is active again');
      assert.equal(r.state.db, h.database);
      assert.equal(r.state.uv, null);
      assert.equal(r.state.lock_holder, null, 'the named lock was released');
      assert.equal(r.state.uncommitted, 0, 'the open transaction was rolled back');
      assert.match(String(r.state.temp_table), /1146/);
      assert.match(String(r.state.prepared), /1243/);
      assert.equal(r.state.profiles, 0);
      const expected = { ...f.status };
      for (const name of ONE_MORE_STATEMENT) expected[name] = String(Number(expected[name]) + 1);
      assert.deepEqual(r.status, expected, 'session status counters');
    } finally {
      await reused.end();
      await fresh.end();
    }
  });

  it('what a login derives from the client’s capabilities holds on a reused connection too (IGNORE_SPACE, INTERACTIVE)', async () => {
    const release = await holdGlobal('interactive_timeout', 28_777);
    try {
      const interactive = () => connect(h.database, { flags: ['INTERACTIVE'] });
      const first = await interactive();
      const id = await connectionId(first);
      const direct = await one(first, 'SELECT @@session.wait_timeout AS wait, @@session.sql_mode AS mode');
      await first.query('SET SESSION wait_timeout = 5, SESSION sql_mode = DEFAULT');
      await endAndPark(first);
      const second = await interactive();
      try {
        assert.equal(await connectionId(second), id, 'the pooled connection was reused');
        const got = await one(second, 'SELECT @@session.wait_timeout AS wait, @@session.sql_mode AS mode');
        assert.deepEqual(got, direct);
        assert.equal(Number(got.wait), 28_777, 'wait_timeout is interactive_timeout, as at a login');
        assert.match(String(got.mode), /IGNORE_SPACE/);
      } finally {
        await second.end();
      }
    } finally {
      await release();
    }
  });

  it('with init_connect set, a session gets a fresh login (which runs it), not a pooled connection', async () => {
    const first = await connect();
    const id = await connectionId(first);
    await endAndPark(first);
    const marker = unique('mg_init');
    const release = await holdGlobal('init_connect', `SET @${marker} = 1`);
    try {
      const second = await connect();
      try {
        assert.notEqual(await connectionId(second), id, 'not the pooled connection');
        assert.equal(Number((await one(second, `SELECT @${marker} AS v`)).v), 1, 'init_connect ran');
      } finally {
        await second.end();
      }
    } finally {
      await release();
    }
  });

  it('after max_allowed_packet changes, a session gets a connection with the new limit, not one opened under the old', async () => {
    const first = await connect();
    const id = await connectionId(first);
    const limit = Number((await one(first, 'SELECT @@session.max_allowed_packet AS v')).v);
    await endAndPark(first);
    const release = await withMaxAllowedPacket(limit + 4 * 1024 * 1024);
    try {
      const second = await connect();
      try {
        assert.notEqual(await connectionId(second), id, 'not the connection opened under the old limit');
        const got = await one(second, 'SELECT @@session.max_allowed_packet AS s, @@global.max_allowed_packet AS g');
        assert.equal(Number(got.s), Number(got.g));
        assert.ok(Number(got.s) > limit);
      } finally {
        await second.end();
      }
    } finally {
      await release();
    }
  });

  it('an idle pooled connection shows in the processlist as the pool’s: the lease account, no database, asleep', async () => {
    const first = await connect();
    const id = await connectionId(first);
    const account = String((await one(first, 'SELECT CURRENT_USER() AS u')).u).replace(/@%$/, '');
    await endAndPark(first);
    assert.deepEqual(h.meshgate.pool.idleConnections().map((c) => c.connectionId), [id]);
    const admin = await connectAdmin(MARIADB);
    try {
      const [rows] = await admin.query<Row[]>('SELECT USER, DB, COMMAND FROM information_schema.PROCESSLIST WHERE ID = ?', [id]);
      assert.deepEqual(rows.map((r) => ({ ...r })), [{ USER: account, DB: null, COMMAND: 'Sleep' }]);
    } finally {
      await admin.end();
    }
  });

  /** What a client can see of its session, and its session's status counters. */
  async function observe(conn: mysql.Connection): Promise<{ state: Record<string, unknown>; status: Record<string, string> }> {
    const state = await one(
      conn,
      `SELECT DATABASE() AS db, CURRENT_USER() AS user, CURRENT_ROLE() AS role, @leftover AS uv,
        @@session.long_query_time AS long_query_time, @@session.sql_mode AS sql_mode, @@session.time_zone AS time_zone,
        @@session.character_set_client AS cs_client, @@session.character_set_connection AS cs_connection,
        @@session.character_set_results AS cs_results, @@session.collation_connection AS collation,
        @@session.autocommit AS autocommit, @@session.in_transaction AS in_transaction, @@session.tx_isolation AS isolation,
        @@session.tx_read_only AS read_only, @@session.max_statement_time AS max_statement_time,
        @@session.sql_select_limit AS select_limit, @@session.lc_time_names AS lc_time_names, @@session.profiling AS profiling,
        @@session.wait_timeout AS wait_timeout, @@session.max_allowed_packet AS max_allowed_packet,
        @@session.net_write_timeout AS net_write_timeout, @@session.div_precision_increment AS div_precision_increment,
        @@session.insert_id AS insert_id, ABS(@@session.timestamp - UNIX_TIMESTAMP()) < 5 AS clock_time,
        LAST_INSERT_ID() AS last_insert_id, ROW_COUNT() AS row_count, @@session.warning_count AS warnings,
        IS_USED_LOCK('${lock}') AS lock_holder, @@session.optimizer_trace AS optimizer_trace, @@session.last_gtid AS last_gtid,
        (SELECT COUNT(*) FROM information_schema.OPTIMIZER_TRACE) AS traces, (SELECT COUNT(*) FROM items WHERE id = 99) AS uncommitted`,
    );
    const attempt = async (sql: string) => {
      try {
        await conn.query(sql);
        return 'ok';
      } catch (error) {
        return String((error as { errno?: number }).errno);
      }
    };
    state.temp_table = await attempt('SELECT * FROM leftover_tmp');
    state.prepared = await attempt('EXECUTE leftover_stmt');
    state.profiles = ((await conn.query<Row[]>('SHOW PROFILES'))[0] as Row[]).length;
    const [rows] = await conn.query<Row[]>('SHOW SESSION STATUS');
    const status = Object.fromEntries(rows.filter((r) => SESSION_STATUS.test(String(r.Variable_name))).map((r) => [String(r.Variable_name), String(r.Value)]));
    return { state: { ...state }, status };
  }
});
