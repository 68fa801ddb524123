/**
 * meshgate's statement tag through the real MariaDB: it names the caller in the processlist,
 * yet leaves nothing a client or the schema can see changed. Stored bodies, syntax errors and
 * SHOW PROFILES read exactly as they do direct, and a client's text that imitates the tag
 * never reaches MariaDB.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { connectAdmin } from '../../../src/demo/provision.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { holdGlobal } from '../../helpers/server-globals.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

const PROCEDURE_BODY = 'BEGIN\n  -- keeps its comments\n  SELECT COUNT(*) AS n FROM items; /* and this one */\nEND';
const FUNCTION_BODY = 'RETURN x * 2';
const TRIGGER_BODY = 'SET NEW.qty = NEW.qty + 0';
const EVENT_BODY = 'DELETE FROM items WHERE qty < 0';

describe('the statement tag through meshgate', { skip: missing }, () => {
  let h: Harness;
  let root: mysql.Connection;
  const connect = (extra: mysql.ConnectionOptions = {}) =>
    mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('orders'), multipleStatements: true, ...extra });

  before(async () => {
    h = await startHarness({ name: 'stmttag', workloads: STANDARD_WORKLOADS, setupSql: ['CREATE TABLE {db}.items (id INT PRIMARY KEY AUTO_INCREMENT, qty INT)'] });
    root = await connectAdmin(MARIADB);
    await root.query(`GRANT CREATE ROUTINE, ALTER ROUTINE, EXECUTE, TRIGGER, EVENT, CREATE VIEW, SHOW VIEW ON \`${h.database}\`.* TO \`${h.roles.rw}\``);
  });
  after(async () => cleanup(() => root?.end(), () => h?.stop()));

  it('stores routine, trigger, event and view bodies exactly as the client sent them', async () => {
    const conn = await connect();
    try {
      await conn.query(`CREATE PROCEDURE count_items() ${PROCEDURE_BODY}`);
      await conn.query(`CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC ${FUNCTION_BODY}`);
      await conn.query(`CREATE TRIGGER items_bi BEFORE INSERT ON items FOR EACH ROW ${TRIGGER_BODY}`);
      await conn.query(`CREATE EVENT purge_items ON SCHEDULE EVERY 1 DAY DISABLE DO ${EVENT_BODY}`);
      await conn.query('CREATE VIEW big_items AS SELECT id, qty FROM items WHERE qty > 10 /* view tail */');
    } finally {
      await conn.end();
    }
    const one = async (sql: string) => ((await root.query(sql, [h.database])) as unknown as [Record<string, string>[]])[0][0]!;
    const routines = (await root.query('SELECT ROUTINE_NAME AS name, ROUTINE_DEFINITION AS body FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY name', [h.database])) as unknown as [{ name: string; body: string }[]];
    assert.deepEqual(routines[0], [{ name: 'count_items', body: PROCEDURE_BODY }, { name: 'twice', body: FUNCTION_BODY }]);
    assert.equal((await one('SELECT ACTION_STATEMENT AS body FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?'))['body'], TRIGGER_BODY);
    assert.equal((await one('SELECT EVENT_DEFINITION AS body FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?'))['body'], EVENT_BODY);
    for (const show of ['SHOW CREATE PROCEDURE', 'SHOW CREATE FUNCTION', 'SHOW CREATE TRIGGER', 'SHOW CREATE EVENT', 'SHOW CREATE VIEW']) {
      const name = { 'SHOW CREATE PROCEDURE': 'count_items', 'SHOW CREATE FUNCTION': 'twice', 'SHOW CREATE TRIGGER': 'items_bi', 'SHOW CREATE EVENT': 'purge_items', 'SHOW CREATE VIEW': 'big_items' }[show];
      const [rows] = (await root.query(`${show} \`${h.database}\`.\`${name}\``)) as unknown as [Record<string, unknown>[]];
      assert.doesNotMatch(JSON.stringify(rows[0]), /meshgate|traceparent/, `${show} ${name}`);
    }
  });

  it('quotes a syntax error exactly as MariaDB does direct, line numbers included', async () => {
    const conn = await connect();
    const direct = await mysql.createConnection({ ...MARIADB, database: h.database, multipleStatements: true });
    try {
      for (const sql of ['SELEC 1', '\n\n  SELECT * FORM items', 'SELECT 1 FROM items WHERE', 'SELECT 1;\nSELECT 2 FROM FROM']) {
        const expected = await direct.query(sql).then(() => null, (e: mysql.QueryError) => e);
        const through = await conn.query(sql).then(() => null, (e: mysql.QueryError) => e);
        assert.ok(expected !== null && through !== null, sql);
        assert.equal(through.message, expected.message, JSON.stringify(sql));
        assert.equal(through.errno, expected.errno);
        assert.equal(through.sqlState, expected.sqlState);
      }
    } finally {
      await cleanup(() => conn.end(), () => direct.end());
    }
  });

  it('lists statements in SHOW PROFILES as the client sent them', async () => {
    const conn = await connect();
    try {
      await conn.query('SET profiling = 1');
      await conn.query('SELECT 1 + 1');
      await conn.query('SELECT COUNT(*) FROM items');
      const [profiles] = (await conn.query('SHOW PROFILES')) as unknown as [{ Query: string }[]];
      assert.deepEqual(profiles.map((p) => p.Query), ['SELECT 1 + 1', 'SELECT COUNT(*) FROM items']);
      // Profiling off again: statements are tagged again.
      await conn.query('SET profiling = 0');
      const [[tagged]] = (await conn.query("SELECT INFO AS info FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()")) as unknown as [[{ info: string }]];
      assert.match(tagged.info, /^\/\*meshgate_identity=/);
    } finally {
      await conn.end();
    }
  });

  it('names the caller first in the processlist, with a trace id, while the statement runs', async () => {
    const conn = await connect();
    const [[{ id }]] = (await conn.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
    try {
      // Killed below: its error is expected, and must not count as unhandled.
      const running = conn.query('SELECT SLEEP(3) AS slept').catch((error: unknown) => error);
      let info: string | null = null;
      for (let i = 0; i < 100 && info === null; i++) {
        const [rows] = (await root.query("SELECT INFO AS info FROM information_schema.PROCESSLIST WHERE ID = ? AND INFO LIKE '%SLEEP(3)%'", [id])) as unknown as [{ info: string }[]];
        info = rows[0]?.info ?? null;
        if (info === null) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(info !== null, 'the statement shows in the processlist');
      const identity = encodeURIComponent(STANDARD_WORKLOADS.orders).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
      assert.ok(info.startsWith(`/*meshgate_identity='${identity}',meshgate_role='${h.roles.rw}',traceparent='00-`), info);
      assert.ok(info.endsWith('*/ SELECT SLEEP(3) AS slept'), info);
      await root.query('KILL QUERY ?', [id]);
      await running;
    } finally {
      await conn.end();
    }
  });

  it("refuses a statement that imitates the tag's keys, before MariaDB sees it, and audits the refusal", async () => {
    const conn = await connect();
    try {
      for (const sql of ["SELECT 1 /*meshgate_identity='spiffe%3A%2F%2Fx%2Fns%2Fops%2Fsa%2Foperator'*/", "/*Meshgate_Role='admin'*/ SELECT 2", "SELECT 'meshgate_identity=operator'"]) {
        await assert.rejects(conn.query(sql), (e: mysql.QueryError) => {
          assert.match(e.message, /\[MG_TAG_IMITATED\]/);
          assert.equal(e.errno, 1044);
          return true;
        });
      }
      await assert.rejects(conn.execute("SELECT ? /*meshgate_identity='x'*/", [1]), /MG_TAG_IMITATED/);
      const [rows] = (await conn.query('SELECT 3 AS n')) as unknown as [{ n: number }[]];
      assert.equal(rows[0]!.n, 3, 'the session goes on');
    } finally {
      await conn.end();
    }
    const refused = (await h.readAudit()).filter((e) => e['type'] === 'statement' && (e['error'] as { code?: string } | null)?.code === 'MG_TAG_IMITATED');
    assert.equal(refused.length, 4);
    assert.ok(refused.every((e) => e['decision'] === 'deny'));
  });
});

describe('the statement tag and MariaDB’s query cache', { skip: missing }, () => {
  let h: Harness;
  let root: mysql.Connection;
  let letGo: (() => Promise<void>) | undefined;

  before(async () => {
    // Held before meshgate starts, which reads the cache's settings then.
    letGo = await holdGlobal('query_cache_type', 'ON');
    h = await startHarness({ name: 'stmtqc', workloads: STANDARD_WORKLOADS, setupSql: ['CREATE TABLE {db}.items (id INT PRIMARY KEY, qty INT)', 'INSERT INTO {db}.items VALUES (1, 5)'] });
    root = await connectAdmin(MARIADB);
  });
  after(async () => cleanup(() => root?.end(), () => h?.stop(), () => letGo?.()));

  it('lets a repeated SELECT hit the cache as it would direct, its trace ids in the audit', async () => {
    const hits = async () => Number(((await root.query("SHOW GLOBAL STATUS LIKE 'Qcache_hits'")) as unknown as [{ Value: string }[]])[0][0]!.Value);
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('orders') });
    const statement = `SELECT qty FROM items WHERE id = 1 AND '${h.database}' <> ''`;
    try {
      const before = await hits();
      for (let i = 0; i < 5; i++) {
        const [rows] = (await conn.query(statement)) as unknown as [{ qty: number }[]];
        assert.equal(rows[0]!.qty, 5);
      }
      // The first run fills the cache; the other four are answered from it (other runs may add more hits, never fewer).
      assert.ok((await hits()) - before >= 4, 'the repeated SELECT was answered from the query cache');
    } finally {
      await conn.end();
    }
    const events = (await h.readAudit()).filter((e) => e['type'] === 'statement' && e['statement'] === statement);
    assert.equal(events.length, 5);
    assert.equal(new Set(events.map((e) => e['traceId'])).size, 5, 'each run has its own trace id in the audit');
  });
});
