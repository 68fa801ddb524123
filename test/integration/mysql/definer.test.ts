/**
 * Objects created through meshgate belong to the session's role, not to the short-lived lease
 * account that created them: they work at once for every identity of the role, and go on
 * working once the lease account is dropped (issue 11, point 2). Against the real MariaDB,
 * with mysql2, comparing with a direct connection where meshgate must not differ.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { connectAdmin } from '../../../src/demo/provision.ts';
import { DEFAULT_POLICY, MARIADB, startHarness, STANDARD_WORKLOADS, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

const WORKLOADS = { ...STANDARD_WORKLOADS, billing: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/billing` };

type MysqlError = { errno?: number; sqlState?: string; message: string };

describe('DEFINER of objects created through meshgate (real MariaDB)', { skip: missing }, () => {
  let h: Harness;
  const open: mysql.Connection[] = [];
  const connect = async (workload: string, extra: mysql.ConnectionOptions = {}) => {
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'u', database: h.database, ssl: h.ssl(workload), ...extra });
    conn.on('error', () => undefined);
    open.push(conn);
    return conn;
  };
  /** The role's own static account, straight to MariaDB: what a client sees direct. */
  const direct = async (extra: mysql.ConnectionOptions = {}) => {
    const account = h.provisioned.accounts.get(h.roles.rw)!;
    const conn = await mysql.createConnection({ host: MARIADB.host, port: MARIADB.port, user: account.user, password: account.password, database: h.database, ...extra });
    open.push(conn);
    return conn;
  };
  const rows = async (conn: mysql.Connection, sql: string) => (await conn.query<mysql.RowDataPacket[]>(sql))[0];
  const failure = async (work: Promise<unknown>): Promise<MysqlError> => {
    try {
      await work;
    } catch (error) {
      const { errno, sqlState, message } = error as MysqlError;
      return { errno, sqlState, message };
    }
    assert.fail('expected MariaDB to refuse the statement');
  };
  const definerOf = async (kind: 'VIEW' | 'PROCEDURE' | 'FUNCTION' | 'TRIGGER' | 'EVENT', name: string) => {
    const [row] = await rows(await connect('billing'), `SHOW CREATE ${kind} ${name}`);
    const text = String(row![kind === 'VIEW' ? 'Create View' : kind === 'TRIGGER' ? 'SQL Original Statement' : `Create ${kind[0]}${kind.slice(1).toLowerCase()}`]);
    return /DEFINER=(`[^`]*`(?:@`[^`]*`)?)/.exec(text)?.[1] ?? text;
  };

  before(async () => {
    h = await startHarness({
      name: 'definer',
      workloads: WORKLOADS,
      credentials: 'dynamic',
      policy: `${DEFAULT_POLICY}
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: billing }
spec:
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/shop/sa/billing"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{rw}" } }]
`,
      setupSql: ['CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(50))', "INSERT INTO {db}.items VALUES (1, 'one')"],
    });
    // What the README tells operators to grant a role whose identities create objects.
    const admin = await connectAdmin(MARIADB);
    try {
      await admin.query(`GRANT CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EXECUTE, TRIGGER, EVENT ON \`${h.database}\`.* TO \`${h.roles.rw}\``);
    } finally {
      await admin.end();
    }
  });
  after(async () => {
    await Promise.all(open.map((conn) => conn.end().catch(() => conn.destroy())));
    // Dropping the harness's database drops every object made here.
    await h?.stop();
  });

  it('a view works at once, for the identity that made it and for another of the role, and belongs to the role', async () => {
    const orders = await connect('orders');
    await orders.query('CREATE VIEW v_items AS SELECT id, name FROM items');
    assert.deepEqual(await rows(orders, 'SELECT name FROM v_items'), [{ name: 'one' }]);
    assert.deepEqual(await rows(await connect('billing'), 'SELECT name FROM v_items'), [{ name: 'one' }]);
    assert.equal(await definerOf('VIEW', 'v_items'), `\`${h.roles.rw}\``);
    // ALTER VIEW without DEFINER keeps the view's definer, here the role: any identity of it may.
    await (await connect('billing')).query('ALTER VIEW v_items AS SELECT id, name FROM items WHERE id > 0');
    assert.equal(await definerOf('VIEW', 'v_items'), `\`${h.roles.rw}\``);
  });

  it('a procedure and a function made by one identity are callable by another of the role', async () => {
    const orders = await connect('orders');
    await orders.query('CREATE PROCEDURE add_item(IN i INT, IN n VARCHAR(50)) INSERT INTO items VALUES (i, n)');
    await orders.query('CREATE FUNCTION item_count() RETURNS INT READS SQL DATA RETURN (SELECT COUNT(*) FROM items)');
    const billing = await connect('billing');
    await billing.query("CALL add_item(2, 'two')");
    assert.deepEqual(await rows(billing, 'SELECT item_count() AS n'), [{ n: 2 }]);
    assert.equal(await definerOf('PROCEDURE', 'add_item'), `\`${h.roles.rw}\``);
    assert.equal(await definerOf('FUNCTION', 'item_count'), `\`${h.roles.rw}\``);
    // A body longer than the part of a statement meshgate decodes: the head is what counts.
    await orders.query(`CREATE PROCEDURE big_body() BEGIN /* ${'x'.repeat(100_000)} */ SELECT 'big' AS b; END`);
    assert.deepEqual((await billing.query<mysql.RowDataPacket[][]>('CALL big_body()'))[0][0], [{ b: 'big' }]);
  });

  it('DEFINER=CURRENT_USER names the role too: the lease account is no owner', async () => {
    const orders = await connect('orders');
    await orders.query('CREATE DEFINER=CURRENT_USER VIEW v_current AS SELECT 1 AS one');
    await orders.query('CREATE DEFINER = CURRENT_USER() PROCEDURE p_current() SELECT 2 AS two');
    assert.equal(await definerOf('VIEW', 'v_current'), `\`${h.roles.rw}\``);
    assert.equal(await definerOf('PROCEDURE', 'p_current'), `\`${h.roles.rw}\``);
    assert.deepEqual(await rows(await connect('billing'), 'SELECT one FROM v_current'), [{ one: 1 }]);
  });

  it('another DEFINER is refused by MariaDB exactly as direct', async () => {
    const statement = 'CREATE DEFINER=`root`@`localhost` VIEW v_root AS SELECT 1';
    const through = await failure((await connect('orders')).query(statement));
    const straight = await failure((await direct()).query(statement));
    assert.deepEqual(through, straight);
    assert.equal(through.errno, 1227);
  });

  it('a syntax error reads exactly as direct, with or without multi-statements', async () => {
    for (const statement of ['CREATE VIEW v_bad AS SELEC 1', 'SELECT 1; CREATE VIEW v_bad AS SELECT 1', 'CREATE ALGORITHM=FAST VIEW v_bad AS SELECT 1']) {
      const through = await failure((await connect('orders')).query(statement));
      const straight = await failure((await direct()).query(statement));
      assert.deepEqual(through, straight, statement);
      assert.equal(through.errno, 1064);
    }
  });

  it('every statement of a multi-statement query, dump-style executable comments, and a prepared CREATE VIEW', async () => {
    const orders = await connect('orders', { multipleStatements: true });
    await orders.query("SELECT 'CREATE VIEW x'; CREATE VIEW v_multi1 AS SELECT 1 AS a; CREATE OR REPLACE ALGORITHM=MERGE VIEW v_multi2 AS SELECT 2 AS a");
    await orders.query('/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 SQL SECURITY DEFINER */\n/*!50001 VIEW `v_dump` AS select 3 AS `a` */');
    await orders.execute('CREATE VIEW v_prepared AS SELECT id FROM items');
    const billing = await connect('billing');
    for (const [view, a] of [['v_multi1', 1], ['v_multi2', 2], ['v_dump', 3]] as const) {
      assert.equal(await definerOf('VIEW', view), `\`${h.roles.rw}\``, view);
      assert.deepEqual(await rows(billing, `SELECT a FROM ${view}`), [{ a }]);
    }
    assert.equal(await definerOf('VIEW', 'v_prepared'), `\`${h.roles.rw}\``);
    // The audit keeps what the client sent.
    const audit = await h.readAudit();
    assert.ok(audit.some((e) => e.type === 'statement' && e.statement === 'CREATE VIEW v_prepared AS SELECT id FROM items'));
    assert.ok(!audit.some((e) => e.type === 'statement' && String(e.statement).includes('CURRENT_ROLE')));
  });

  it('objects outlive the lease that made them: a trigger, a procedure, a view and an event after its account is dropped', async () => {
    const orders = await connect('orders');
    const [me] = await rows(orders, 'SELECT CURRENT_USER() AS u');
    const account = String(me!.u).replace(/@%$/, '');
    await orders.query('CREATE TABLE orders_log (id INT, note VARCHAR(20))');
    await orders.query('CREATE TABLE orders_t (id INT PRIMARY KEY)');
    await orders.query("CREATE TRIGGER orders_t_ai AFTER INSERT ON orders_t FOR EACH ROW INSERT INTO orders_log VALUES (NEW.id, 'trigger')");
    await orders.query("CREATE PROCEDURE log_note(IN i INT) INSERT INTO orders_log VALUES (i, 'procedure')");
    await orders.query('CREATE VIEW v_log AS SELECT id, note FROM orders_log');
    // Disabled: the event scheduler is global and shared; only its definer matters here.
    await orders.query("CREATE EVENT orders_ev ON SCHEDULE EVERY 1 DAY DISABLE DO INSERT INTO orders_log VALUES (0, 'event')");
    assert.equal(await definerOf('TRIGGER', 'orders_t_ai'), `\`${h.roles.rw}\``);
    assert.equal(await definerOf('EVENT', 'orders_ev'), `\`${h.roles.rw}\``);

    const lost = new Promise<void>((resolve) => orders.once('error', () => resolve()));
    const revoked = await h.meshgate.credentials!.leases.revoke({ principal: WORKLOADS.orders }, 'test: the creator goes away');
    assert.equal(revoked.length, 1);
    await lost;
    assert.ok(!(await h.leaseAccounts()).includes(account), 'the creating account is gone');

    const billing = await connect('billing');
    await billing.query('INSERT INTO orders_t VALUES (7)');
    await billing.query('CALL log_note(8)');
    assert.deepEqual(await rows(billing, 'SELECT id, note FROM v_log ORDER BY id'), [
      { id: 7, note: 'trigger' },
      { id: 8, note: 'procedure' },
    ]);
    // ALTER EVENT makes its caller the definer: still the role, never billing's lease account.
    await billing.query("ALTER EVENT orders_ev COMMENT 'altered'");
    const [event] = await rows(billing, `SELECT DEFINER AS d FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() AND EVENT_NAME = 'orders_ev'`);
    assert.equal(event!.d, `${h.roles.rw}@`);
    // And the creator's identity, on its next lease, still uses what it made.
    const again = await connect('orders');
    await again.query('INSERT INTO orders_t VALUES (9)');
    assert.equal((await rows(again, 'SELECT COUNT(*) AS n FROM v_log'))[0]!.n, 3);
  });

  it('a session that dropped its role (SET ROLE NONE) is refused as direct: it has no rights to create', async () => {
    const orders = await connect('orders');
    await orders.query('SET ROLE NONE');
    const through = await failure(orders.query('CREATE VIEW v_norole AS SELECT 1'));
    const straight = await direct();
    await straight.query('SET ROLE NONE');
    const refused = await failure(straight.query('CREATE VIEW v_norole AS SELECT 1'));
    // Same error; the account named in the message differs (the lease's, the static account's).
    assert.equal(through.errno, refused.errno);
    assert.equal(through.errno, 1142);
    assert.equal(through.sqlState, refused.sqlState);
  });
});
