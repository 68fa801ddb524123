/**
 * The mysql2 driver through meshgate against the real MariaDB: everything an application
 * does must work unchanged apart from host, port and TLS files.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { startHarness, STANDARD_WORKLOADS, withMaxAllowedPacket, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

/** The same outcome, with a rejection handler attached at once (the rejection is still asserted later). */
function caught<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

describe('mysql2 through meshgate', { skip: missing }, () => {
  let h: Harness;
  const connect = (workload: string, extra: mysql.ConnectionOptions = {}) =>
    mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl(workload), ...extra });

  before(async () => {
    h = await startHarness({
      name: 'mysql2',
      workloads: STANDARD_WORKLOADS,
      setupSql: ['CREATE TABLE {db}.orders (id INT PRIMARY KEY AUTO_INCREMENT, item VARCHAR(100), qty INT, payload LONGBLOB)'],
    });
  });
  after(async () => h?.stop());

  it('runs text-protocol queries and returns rows and affected rows', async () => {
    const conn = await connect('orders');
    try {
      const [insert] = await conn.query<mysql.ResultSetHeader>("INSERT INTO orders (item, qty) VALUES ('apple', 3), ('pear', 5)");
      assert.equal(insert.affectedRows, 2);
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT item, qty FROM orders ORDER BY id');
      assert.deepEqual(rows.map((r) => [r.item, r.qty]), [['apple', 3], ['pear', 5]]);
      const [who] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u, CURRENT_ROLE() AS r');
      assert.match(String(who[0]!.u), new RegExp(`^mg_${h.roles.rw}@`));
      assert.equal(who[0]!.r, h.roles.rw);
    } finally {
      await conn.end();
    }
  });

  it('runs prepared statements (binary protocol), reused and closed', async () => {
    const conn = await connect('orders');
    try {
      for (let i = 0; i < 3; i++) {
        const [rows] = await conn.execute<mysql.RowDataPacket[]>('SELECT ? + 1 AS n, ? AS s', [i, `v${i}`]);
        assert.deepEqual([rows[0]!.n, rows[0]!.s], [i + 1, `v${i}`]);
      }
      const [res] = await conn.execute<mysql.ResultSetHeader>('INSERT INTO orders (item, qty) VALUES (?, ?)', ['plum', 7]);
      assert.equal(res.affectedRows, 1);
      await conn.unprepare('SELECT ? + 1 AS n, ? AS s');
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
      await conn.query("INSERT INTO orders (item, qty) VALUES ('kept', 1)");
      await conn.commit();
      const [rows] = await conn.query<mysql.RowDataPacket[]>("SELECT item FROM orders WHERE item IN ('ghost', 'kept')");
      assert.deepEqual(rows.map((r) => r.item), ['kept']);
    } finally {
      await conn.end();
    }
  });

  it('returns multiple result sets from multi-statements', async () => {
    const conn = await connect('orders', { multipleStatements: true });
    try {
      const [results] = await conn.query<mysql.RowDataPacket[][]>('SELECT 1 AS a; SELECT 2 AS b, 3 AS c; SELECT 4 AS d');
      assert.equal(results.length, 3);
      assert.deepEqual(results[1]![0], { b: 2, c: 3 });
    } finally {
      await conn.end();
    }
  });

  it('relays MariaDB errors intact and the session goes on', async () => {
    const conn = await connect('orders');
    try {
      await assert.rejects(conn.query('SELEC 1'), (e: { errno?: number; sqlState?: string; message: string }) => {
        assert.equal(e.errno, 1064);
        assert.equal(e.sqlState, '42000');
        assert.match(e.message, /You have an error in your SQL syntax/);
        return true;
      });
      await assert.rejects(conn.query('SELECT * FROM no_such_table'), (e: { errno?: number }) => e.errno === 1146);
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT 42 AS answer');
      assert.equal(rows[0]!.answer, 42);
    } finally {
      await conn.end();
    }
  });

  it('changes database with USE / COM_INIT_DB, pings, and quits cleanly', async () => {
    const conn = await connect('orders', { database: undefined });
    try {
      await conn.query(`USE ${h.database}`);
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT DATABASE() AS db');
      assert.equal(rows[0]!.db, h.database);
      await conn.ping();
    } finally {
      await conn.end();
    }
    const audit = await h.readAudit();
    assert.ok(audit.some((e) => e.type === 'session_end' && e.reason === 'client quit'));
  });

  it('moves rows and statements larger than 16 MiB both ways', async () => {
    const restorePacketLimit = await withMaxAllowedPacket(64 * 1024 * 1024);
    // Pooled upstream connections keep the limit they logged in with.
    h.meshgate.pool.drain();
    const conn = await connect('orders');
    const size = 20 * 1024 * 1024;
    try {
      const blob = Buffer.alloc(size, 0x5a);
      blob[size - 1] = 0x21;
      const [res] = await conn.execute<mysql.ResultSetHeader>('INSERT INTO orders (item, qty, payload) VALUES (?, ?, ?)', ['big', 1, blob]);
      assert.equal(res.affectedRows, 1);
      const [rows] = await conn.query<mysql.RowDataPacket[]>("SELECT payload FROM orders WHERE item = 'big'");
      const got = rows[0]!.payload as Buffer;
      assert.equal(got.length, size);
      assert.equal(got[size - 1], 0x21);
      const [text] = await conn.query<mysql.RowDataPacket[]>(`SELECT REPEAT('y', ${size}) AS s, 1 AS after_it`);
      assert.equal((text[0]!.s as string).length, size);
      assert.equal(text[0]!.after_it, 1);
    } finally {
      await conn.end();
      await restorePacketLimit();
    }
  });

  it('KILL QUERY <CONNECTION_ID()> and KILL QUERY <greeting id> each reach exactly the session they name', async () => {
    const [a, b, c] = await Promise.all([connect('orders'), connect('orders'), connect('orders')]);
    try {
      const idOf = async (conn: mysql.Connection) => Number(((await conn.query('SELECT CONNECTION_ID() AS id')) as unknown as [{ id: number }[]])[0][0]!.id);
      const [bThread, cThread] = [await idOf(b), await idOf(c)];
      // By MariaDB's id (what CONNECTION_ID() says through meshgate): only b's query stops.
      // Its error can come before the KILL's OK: a handler from the start, or it is an unhandled rejection.
      const bSleeping = caught(b.query('SELECT SLEEP(20) AS s'));
      const cSleeping = c.query('SELECT SLEEP(1) AS s');
      await new Promise((resolve) => setTimeout(resolve, 200));
      await a.query(`KILL QUERY ${bThread}`);
      await assert.rejects(bSleeping, (e: Error & { errno?: number }) => e.errno === 1317, 'MariaDB interrupts the query it names (1317)');
      const [[cRow]] = (await cSleeping) as unknown as [[{ s: number }]];
      assert.equal(Number(cRow.s), 0, 'the other session of the same identity ran to its end');
      // By the id the greeting gave (what drivers send on a time-out): it maps to c's thread.
      const cAgain = caught(c.query('SELECT SLEEP(20) AS s'));
      await new Promise((resolve) => setTimeout(resolve, 200));
      await a.query(`KILL QUERY ${c.threadId}`);
      await assert.rejects(cAgain, (e: Error & { errno?: number }) => e.errno === 1317);
      assert.notEqual(c.threadId, cThread, 'the greeting id and MariaDB thread id are two numbers');
      assert.deepEqual((await a.query('SELECT 1 AS one'))[0], [{ one: 1 }], 'the killer goes on');
    } finally {
      await Promise.all([a, b, c].map((conn) => conn.end().catch(() => undefined)));
    }
  });

  it('serves many concurrent sessions', async () => {
    const pool = mysql.createPool({ host: '127.0.0.1', port: h.port, user: 'x', database: h.database, ssl: h.ssl('analytics'), connectionLimit: 8 });
    try {
      const results = await Promise.all(Array.from({ length: 64 }, (_, i) => pool.query<mysql.RowDataPacket[]>('SELECT ? AS i', [i])));
      assert.deepEqual(results.map(([rows]) => rows[0]!.i), Array.from({ length: 64 }, (_, i) => i));
    } finally {
      await pool.end();
    }
  });
});
