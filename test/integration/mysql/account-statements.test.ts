/**
 * No client statement through meshgate changes a MariaDB account (issue 12, point 1). MariaDB
 * lets any account change its own password, so `SET PASSWORD` through meshgate would hand
 * the client its lease account, usable without meshgate. Every form — multi-statements,
 * executable comments, routine/trigger/event bodies, PREPARE and EXECUTE IMMEDIATE literals,
 * COM_STMT_PREPARE — is refused before MariaDB sees it; the lease's password still works
 * afterwards and no new lease was needed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { connectAdmin } from '../../../src/demo/provision.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, unique, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

const hex = (sql: string) => `0x${Buffer.from(sql, 'latin1').toString('hex')}`;

/** Each would change an account (or let the client do so later) if MariaDB saw it. */
const ACCOUNT_CHANGES = (newUser: string, role: string): string[] => [
  "SET PASSWORD = PASSWORD('hijacked')",
  "sEt/* hi */PaSsWoRd = PASSWORD('hijacked')",
  "SET PASSWORD FOR CURRENT_USER() = PASSWORD('hijacked')",
  "SET PASSWORD = '*0123456789ABCDEF0123456789ABCDEF01234567'",
  "ALTER USER CURRENT_USER() IDENTIFIED BY 'hijacked'",
  `CREATE USER '${newUser}'@'%' IDENTIFIED BY 'x'`,
  `CREATE OR REPLACE USER IF NOT EXISTS '${newUser}'@'%'`,
  `DROP USER IF EXISTS '${newUser}'@'%'`,
  `RENAME USER '${newUser}'@'%' TO '${newUser}_2'@'%'`,
  `GRANT SELECT ON *.* TO CURRENT_USER()`,
  `REVOKE ALL PRIVILEGES, GRANT OPTION FROM '${newUser}'@'%'`,
  `GRANT \`${role}\` TO '${newUser}'@'%'`,
  `CREATE ROLE '${newUser}_role'`,
  `DROP ROLE IF EXISTS '${newUser}_role'`,
  'SET DEFAULT ROLE NONE',
  "SELECT 1; SET PASSWORD = PASSWORD('hijacked')",
  "SELECT 1;\n  -- harmless\n  SET PASSWORD = PASSWORD('hijacked'); SELECT 2",
  "/*!SET PASSWORD = PASSWORD('hijacked')*/",
  "/*M!100100 SET PASSWORD = PASSWORD('hijacked') */",
  "SELECT 1 /*!; SET PASSWORD = PASSWORD('hijacked') */",
  "CREATE PROCEDURE take_over() BEGIN SELECT 1; SET PASSWORD = PASSWORD('hijacked'); END",
  "CREATE PROCEDURE take_over() SET PASSWORD = PASSWORD('hijacked')",
  "CREATE TRIGGER take_over BEFORE UPDATE ON items FOR EACH ROW SET PASSWORD = PASSWORD('hijacked')",
  "CREATE EVENT take_over ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL 1 HOUR DO SET PASSWORD = PASSWORD('hijacked')",
  "CREATE PROCEDURE take_over() BEGIN DECLARE CONTINUE HANDLER FOR SQLEXCEPTION GRANT SELECT ON *.* TO CURRENT_USER(); END",
  "PREPARE take_over FROM 'SET PASSWORD = PASSWORD(''hijacked'')'",
  "EXECUTE IMMEDIATE 'SET PASSWORD = PASSWORD(\\'hijacked\\')'",
  "EXECUTE IMMEDIATE 'SET PASS' 'WORD = PASSWORD(\"hijacked\")'",
  "EXECUTE IMMEDIATE 'EXECUTE IMMEDIATE ''ALTER USER CURRENT_USER() IDENTIFIED BY \"x\"'''",
  "EXECUTE IMMEDIATE 'SET P\\ASSWORD = PASSWORD(\"hijacked\")'",
  `EXECUTE IMMEDIATE ${hex("SET PASSWORD = PASSWORD('hijacked')")}`,
  "SET @take_over = 'SET PASSWORD = PASSWORD(\"hijacked\")'; PREPARE s FROM @take_over; EXECUTE s",
  "BINLOG 'AAAA'",
];

/** Ordinary statements that mention the words; all of them must pass. */
const ORDINARY = (role: string): string[] => [
  'CREATE TABLE creds (user VARCHAR(20), password VARCHAR(64), role VARCHAR(20))',
  "INSERT INTO creds SET user = 'ann', password = PASSWORD('x'), role = 'reader'",
  "INSERT INTO creds (user, password, role) VALUES ('bob', 'they will grant me a role', 'writer')",
  "UPDATE creds SET password = PASSWORD('y') WHERE user = 'ann'",
  "UPDATE creds SET role = 'admin', password = 'z' WHERE user = 'bob'",
  "SELECT user, password, role FROM creds WHERE role <> 'a dropped user' /* GRANT ALL ON *.* TO me */",
  "SELECT 'please grant me access', \"set password later\" -- revoke nothing",
  'SHOW GRANTS',
  `SET ROLE NONE; SET ROLE \`${role}\``,
  'DROP TABLE creds',
];

describe('account statements through meshgate', { skip: missing }, () => {
  let h: Harness;
  let root: mysql.Connection;
  const newUser = unique('mgt_acct_new');
  const connect = () =>
    mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('orders'), multipleStatements: true });
  const authOf = async (user: string) => {
    const [rows] = (await root.query('SELECT authentication_string AS auth FROM mysql.user WHERE User = ?', [user])) as unknown as [{ auth: string }[]];
    return rows.map((r) => r.auth);
  };

  before(async () => {
    h = await startHarness({ name: 'acctstmt', workloads: STANDARD_WORKLOADS, credentials: 'dynamic', setupSql: ['CREATE TABLE {db}.items (id INT PRIMARY KEY, qty INT)'] });
    root = await connectAdmin(MARIADB);
    // Everything a routine, trigger or event needs: only meshgate stands in the way.
    await root.query(`GRANT CREATE ROUTINE, ALTER ROUTINE, EXECUTE, TRIGGER, EVENT ON \`${h.database}\`.* TO \`${h.roles.rw}\``);
  });
  after(async () =>
    cleanup(
      async () => {
        await root?.query(`DROP USER IF EXISTS '${newUser}'@'%', '${newUser}_2'@'%'`);
        await root?.query(`DROP ROLE IF EXISTS '${newUser}_role'`);
      },
      () => root?.end(),
      () => h?.stop(),
    ),
  );

  it('refuses every account statement before MariaDB sees it; the lease password still works after', async () => {
    const conn = await connect();
    const [[{ me }]] = (await conn.query('SELECT CURRENT_USER() AS me')) as unknown as [[{ me: string }]];
    const lease = me.slice(0, me.lastIndexOf('@'));
    const authBefore = await authOf(lease);
    assert.equal(authBefore.length, 1);
    const leasesBefore = await h.leaseAccounts();
    try {
      for (const sql of ACCOUNT_CHANGES(newUser, h.roles.rw)) {
        await assert.rejects(conn.query(sql), (e: mysql.QueryError) => {
          assert.match(e.message, /^\[MG_ACCOUNT_CHANGE_REFUSED\]/, sql);
          assert.equal(e.errno, 1044, sql);
          return true;
        });
      }
      // The binary protocol's COM_STMT_PREPARE is read the same way.
      await assert.rejects(conn.prepare('SET PASSWORD = PASSWORD(?)'), /MG_ACCOUNT_CHANGE_REFUSED/);
      await assert.rejects(conn.execute('ALTER USER CURRENT_USER() IDENTIFIED BY ?', ['x']), /MG_ACCOUNT_CHANGE_REFUSED/);
      const [[{ n }]] = (await conn.query('SELECT 3 AS n')) as unknown as [[{ n: number }]];
      assert.equal(n, 3, 'the session goes on');
    } finally {
      await conn.end();
    }
    assert.deepEqual(await authOf(lease), authBefore, "the lease account's password is unchanged");
    assert.deepEqual(await authOf(newUser), [], 'no account was created');
    const [routines] = (await root.query('SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?', [h.database])) as unknown as [unknown[]];
    assert.deepEqual(routines, []);
    // A second session logs in with the same lease: its password still works.
    const again = await connect();
    try {
      const [[{ me: meAgain }]] = (await again.query('SELECT CURRENT_USER() AS me')) as unknown as [[{ me: string }]];
      assert.equal(meAgain, me);
    } finally {
      await again.end();
    }
    assert.deepEqual(await h.leaseAccounts(), leasesBefore, 'no new lease was needed');
    const refused = (await h.readAudit()).filter((e) => e['type'] === 'statement' && (e['error'] as { code?: string } | null)?.code === 'MG_ACCOUNT_CHANGE_REFUSED');
    assert.equal(refused.length, ACCOUNT_CHANGES(newUser, h.roles.rw).length + 2);
    assert.ok(refused.every((e) => e['decision'] === 'deny'));
  });

  it("reads a latin1 session's text as MariaDB does there: 0xA0 is whitespace", async () => {
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('orders'), multipleStatements: true, charset: 'latin1_swedish_ci' });
    try {
      const [[{ me }]] = (await conn.query('SELECT CURRENT_USER() AS me')) as unknown as [[{ me: string }]];
      const lease = me.slice(0, me.lastIndexOf('@'));
      const authBefore = await authOf(lease);
      const [[{ n }]] = (await conn.query('SELECT\u00a01 AS n')) as unknown as [[{ n: number }]];
      assert.equal(n, 1, 'MariaDB reads 0xA0 as whitespace in latin1');
      await assert.rejects(conn.query("SELECT 1;\u00a0SET\u00a0PASSWORD\u00a0=\u00a0PASSWORD('hijacked')"), /MG_ACCOUNT_CHANGE_REFUSED/);
      assert.deepEqual(await authOf(lease), authBefore);
    } finally {
      await conn.end();
    }
  });

  it('passes ordinary statements that mention users, roles, passwords and grants', async () => {
    const conn = await connect();
    try {
      for (const sql of ORDINARY(h.roles.rw)) await conn.query(sql);
      const [rows] = (await conn.execute('SELECT ? AS said', ['GRANT ALL ON *.* TO me'])) as unknown as [{ said: string }[]];
      assert.equal(rows[0]!.said, 'GRANT ALL ON *.* TO me', 'parameters are values, never SQL');
    } finally {
      await conn.end();
    }
  });
});
