/**
 * MariaDB's own Node connector through meshgate. It takes protocol paths mysql2 does not:
 * CLIENT_DEPRECATE_EOF, MariaDB extended capabilities, pipelined commands, COM_STMT_EXECUTE
 * of "the statement just prepared" (id 0xFFFFFFFF), COM_STMT_BULK_EXECUTE for batch(), and
 * COM_RESET_CONNECTION.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as mariadb from 'mariadb';
import { startHarness, STANDARD_WORKLOADS, withMaxAllowedPacket, type Harness } from '../../helpers/meshgate.ts';

type Row = Record<string, unknown>;

describe('mariadb connector through meshgate', () => {
  let h: Harness;
  const connect = (workload = 'orders', extra: Partial<mariadb.ConnectionConfig> = {}) =>
    mariadb.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl(workload), ...extra });

  before(async () => {
    h = await startHarness({
      name: 'mdbdrv',
      workloads: STANDARD_WORKLOADS,
      setupSql: ['CREATE TABLE {db}.items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100), qty INT, payload LONGBLOB)'],
    });
  });
  after(async () => h?.stop());

  it('runs text queries and reports the role it was given', async () => {
    const conn = await connect();
    try {
      const res = (await conn.query("INSERT INTO items (name, qty) VALUES ('a', 1), ('b', 2)")) as { affectedRows: number };
      assert.equal(res.affectedRows, 2);
      const rows = (await conn.query('SELECT name, qty FROM items ORDER BY id')) as Row[];
      assert.deepEqual(rows.map((r) => [r.name, r.qty]), [['a', 1], ['b', 2]]);
      const [who] = (await conn.query('SELECT CURRENT_ROLE() AS r')) as Row[];
      assert.equal(who!.r, 'mdbdrv_rw');
    } finally {
      await conn.end();
    }
  });

  it('runs prepared statements, 50 of them pipelined on one connection', async () => {
    const conn = await connect();
    try {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => conn.execute('SELECT ? * 2 AS n, ? AS s', [i, `v${i}`]) as Promise<Row[]>));
      // `? * 2` is a BIGINT, which the connector returns as a bigint.
      assert.deepEqual(results.map((rows) => Number(rows[0]!.n)), Array.from({ length: 50 }, (_, i) => i * 2));
      assert.deepEqual(results.map((rows) => rows[0]!.s), Array.from({ length: 50 }, (_, i) => `v${i}`));
      const again = (await conn.execute('SELECT ? * 2 AS n, ? AS s', [21, 'x'])) as Row[];
      assert.equal(Number(again[0]!.n), 42);
    } finally {
      await conn.end();
    }
  });

  it('batch() inserts 1000 rows in bulk', async () => {
    const conn = await connect();
    try {
      const values = Array.from({ length: 1000 }, (_, i) => [`bulk-${i}`, i]);
      const res = (await conn.batch('INSERT INTO items (name, qty) VALUES (?, ?)', values)) as { affectedRows: number };
      assert.equal(res.affectedRows, 1000);
      const [count] = (await conn.query("SELECT COUNT(*) AS c FROM items WHERE name LIKE 'bulk-%'")) as Row[];
      assert.equal(Number(count!.c), 1000);
    } finally {
      await conn.end();
    }
  });

  it('keeps transactions and multi-statement results', async () => {
    const conn = await connect('orders', { multipleStatements: true });
    try {
      await conn.beginTransaction();
      await conn.query("INSERT INTO items (name, qty) VALUES ('ghost', 0)");
      await conn.rollback();
      const [ghosts] = (await conn.query("SELECT COUNT(*) AS c FROM items WHERE name = 'ghost'")) as Row[];
      assert.equal(Number(ghosts!.c), 0);
      const results = (await conn.query('SELECT 1 AS a; SELECT 2 AS b; SELECT 3 AS c')) as Row[][];
      assert.deepEqual(results.slice(0, 3).map((r) => Object.values(r[0]!)[0]), [1, 2, 3]);
    } finally {
      await conn.end();
    }
  });

  it('relays errors intact; the session goes on', async () => {
    const conn = await connect();
    try {
      await assert.rejects(conn.query('SELEC 1'), (e: mariadb.SqlError) => e.errno === 1064 && e.sqlState === '42000');
      const [row] = (await conn.query('SELECT 7 AS n')) as Row[];
      assert.equal(row!.n, 7);
    } finally {
      await conn.end();
    }
  });

  it('reset() clears session state and keeps the role; ping() answers', async () => {
    const conn = await connect();
    try {
      await conn.query('SET @x = 1');
      await conn.reset();
      const [row] = (await conn.query('SELECT @x AS x, CURRENT_ROLE() AS r')) as Row[];
      assert.equal(row!.x, null);
      assert.equal(row!.r, 'mdbdrv_rw');
      await conn.ping();
    } finally {
      await conn.end();
    }
  });

  it('refuses changeUser with MG_COMMAND_FORBIDDEN', async () => {
    const conn = await connect('analytics');
    try {
      await assert.rejects(conn.changeUser({ user: 'root', password: '' }), (e: Error) => /\[MG_COMMAND_FORBIDDEN\]/.test(e.message));
    } finally {
      await conn.destroy();
    }
  });

  it('serves a pool of 16 connections under 200 concurrent queries', async () => {
    const pool = mariadb.createPool({ host: '127.0.0.1', port: h.port, user: 'x', database: h.database, ssl: h.ssl('analytics'), connectionLimit: 16 });
    try {
      const rows = await Promise.all(Array.from({ length: 200 }, (_, i) => pool.query('SELECT ? AS i', [i]) as Promise<Row[]>));
      assert.deepEqual(rows.map((r) => Number(r[0]!.i)), Array.from({ length: 200 }, (_, i) => i));
    } finally {
      await pool.end();
    }
  });

  it('moves a row larger than 16 MiB both ways', async () => {
    const restore = await withMaxAllowedPacket(64 * 1024 * 1024);
    const conn = await connect('orders', { maxAllowedPacket: 64 * 1024 * 1024 });
    try {
      const blob = Buffer.alloc(17 * 1024 * 1024, 0x41);
      blob[blob.length - 1] = 0x42;
      await conn.query("INSERT INTO items (name, qty, payload) VALUES ('huge', 1, ?)", [blob]);
      const [row] = (await conn.query("SELECT payload FROM items WHERE name = 'huge'")) as Row[];
      const got = row!.payload as Buffer;
      assert.equal(got.length, blob.length);
      assert.equal(got[got.length - 1], 0x42);
    } finally {
      await conn.end();
      await restore();
    }
  });

  it('audits every statement with rows, prepared text and the caller trace id; MariaDB sees the tag', async () => {
    const conn = await connect();
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    try {
      await conn.query(`SELECT name FROM items WHERE qty < 3 /*traceparent='00-${traceId}-b7ad6b7169203331-01'*/`);
      await conn.execute('SELECT qty FROM items WHERE name = ?', ['a']);
      const [info] = (await conn.query('SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()')) as Row[];
      assert.match(String(info!.INFO), /meshgate_identity='spiffe%3A%2F%2Ftest\.meshgate\.local%2Fns%2Fshop%2Fsa%2Forders'/);
      assert.match(String(info!.INFO), /meshgate_role='mdbdrv_rw'/);
    } finally {
      await conn.end();
    }
    const events = await h.readAudit();
    const traced = events.find((e) => e.type === 'statement' && e.traceId === traceId);
    assert.ok(traced, 'the statement carrying a traceparent is audited with its trace id');
    assert.ok(Number(traced.rowsReturned) >= 2);
    const executed = events.filter((e) => e.type === 'statement' && e.command === 'execute' && e.statement === 'SELECT qty FROM items WHERE name = ?');
    assert.ok(executed.length >= 1, 'an execute is audited with the SQL it prepared');
    assert.equal(executed.at(-1)!.rowsReturned, 1);
  });
});
