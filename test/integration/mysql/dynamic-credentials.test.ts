/**
 * Dynamic credentials and upstream pooling through meshgate against the real MariaDB:
 * a MariaDB account per identity, connections reused only after a reset that leaves
 * nothing of the previous client behind, revocation ending sessions and pooled
 * connections, and nothing left in MariaDB when meshgate stops.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { DEFAULT_POLICY, existingAccounts, startHarness, STANDARD_WORKLOADS, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

/** Identities no other test of this file logs in as, so each starts with no lease. */
const NEWCOMERS = {
  newcomer: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/newcomer`,
  latecomer: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/latecomer`,
};
const NEWCOMER_POLICY = `${DEFAULT_POLICY}
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: newcomers }
spec:
  action: ALLOW
  rules:
    - id: newcomers
      from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/shop/sa/newcomer", "${TRUST_DOMAIN}/ns/shop/sa/latecomer"] } }]
      to: [{ mariadb: { databases: ["{db}", "*"], role: "{ro}" } }]
`;

describe('dynamic credentials and pooling', { skip: missing }, () => {
  let h: Harness;
  const connect = (workload: string, database: string | null = h.database) =>
    mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', ...(database === null ? {} : { database }), ssl: h.ssl(workload) });
  const whoAmI = async (conn: mysql.Connection) => {
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u, CURRENT_ROLE() AS r, CONNECTION_ID() AS id, DATABASE() AS db');
    return rows[0] as { u: string; r: string; id: number; db: string | null };
  };
  /** The upstream connection goes back to the pool after the reset, a moment after end(). */
  const returned = async (before: number) => {
    for (let i = 0; i < 100 && h.meshgate.pool.stats.returned === before; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(h.meshgate.pool.stats.returned, before + 1, 'the connection went back to the pool');
  };

  before(async () => {
    h = await startHarness({
      name: 'dyncreds',
      workloads: { ...STANDARD_WORKLOADS, ...NEWCOMERS },
      policy: NEWCOMER_POLICY,
      credentials: 'dynamic',
      setupSql: ['CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(50))', "INSERT INTO {db}.items VALUES (1, 'one')"],
    });
  });
  after(async () => {
    if (h === undefined) return;
    await h.stop();
    // Stopping meshgate drops every session lease it made.
    assert.deepEqual(await h.leaseAccounts(), []);
  });

  it('logs each identity in as its own MariaDB account, named after it, with the role active', async () => {
    const orders = await connect('orders');
    const analytics = await connect('analytics');
    try {
      const o = await whoAmI(orders);
      const a = await whoAmI(analytics);
      assert.match(o.u, /^mg-shop\.orders-[a-z2-7]{8}@%$/);
      assert.match(a.u, /^mg-shop\.analytics-[a-z2-7]{8}@%$/);
      assert.equal(o.r, h.roles.rw);
      assert.equal(a.r, h.roles.ro);
      const [rows] = await analytics.query<mysql.RowDataPacket[]>('SELECT name FROM items');
      assert.deepEqual(rows.map((r) => r.name), ['one']);
      await assert.rejects(analytics.query("INSERT INTO items VALUES (2, 'two')"), /INSERT command denied/);
      const leases = await h.meshgate.credentials!.leases.list();
      assert.deepEqual(leases.map((l) => [l.principal, l.role, l.state, l.purpose]).sort(), [
        [STANDARD_WORKLOADS.analytics, h.roles.ro, 'active', 'session'],
        [STANDARD_WORKLOADS.orders, h.roles.rw, 'active', 'session'],
      ]);
    } finally {
      await orders.end();
      await analytics.end();
    }
  });

  it('reuses an upstream connection only after a reset: no variable, prepared statement, transaction or database leaks', async () => {
    const first = await connect('orders');
    const { id } = await whoAmI(first);
    await first.query('SET @secret = 42');
    await first.query("PREPARE leftover FROM 'SELECT 1'");
    await first.query('USE information_schema');
    await first.query(`BEGIN`);
    await first.query(`INSERT INTO ${h.database}.items VALUES (99, 'uncommitted')`);
    const returnedBefore = h.meshgate.pool.stats.returned;
    await first.end();
    await returned(returnedBefore);
    const reusedBefore = h.meshgate.pool.stats.reused;
    const second = await connect('orders');
    try {
      const me = await whoAmI(second);
      assert.equal(me.id, id, 'the same upstream connection');
      assert.equal(h.meshgate.pool.stats.reused, reusedBefore + 1);
      assert.equal(me.db, h.database, 'back on the database the client asked for');
      const [vars] = await second.query<mysql.RowDataPacket[]>('SELECT @secret AS s');
      assert.equal(vars[0]!.s, null);
      await assert.rejects(second.query('EXECUTE leftover'), /Unknown prepared statement/);
      const [rows] = await second.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM items WHERE id = 99');
      assert.equal(Number(rows[0]!.n), 0, 'the open transaction was rolled back');
    } finally {
      await second.end();
    }
  });

  it('a client that asked for no database gets a connection with none selected, even one a session had chosen a database on', async () => {
    const first = await connect('analytics', null);
    const { id } = await whoAmI(first);
    await first.query(`USE ${h.database}`);
    const returnedBefore = h.meshgate.pool.stats.returned;
    await first.end();
    await returned(returnedBefore);
    const second = await connect('analytics', null);
    try {
      const me = await whoAmI(second);
      assert.equal(me.id, id, 'the same upstream connection');
      assert.equal(me.db, null);
    } finally {
      await second.end();
    }
  });

  it('a session cut off mid-result does not return its connection to the pool', async () => {
    const conn = await connect('orders');
    const { id } = await whoAmI(conn);
    conn.query('SELECT SLEEP(0.3)').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    conn.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const next = await connect('orders');
    try {
      assert.notEqual((await whoAmI(next)).id, id);
    } finally {
      await next.end();
    }
  });

  it('revoking an identity ends its sessions and pooled connections; its next session gets a new account', async () => {
    const open = await connect('orders');
    const before = await whoAmI(open);
    const lost = new Promise<void>((resolve) => open.on('error', () => resolve()));
    const revoked = await h.meshgate.credentials!.leases.revoke({ principal: STANDARD_WORKLOADS.orders }, 'test revocation');
    assert.equal(revoked.length, 1);
    assert.equal(revoked[0]!.state, 'revoked');
    await lost;
    assert.ok(!(await h.leaseAccounts()).includes(before.u.replace(/@%$/, '')));
    const next = await connect('orders');
    try {
      const after = await whoAmI(next);
      assert.notEqual(after.u, before.u);
      assert.match(after.u, /^mg-shop\.orders-/);
    } finally {
      await next.end();
    }
  });

  it('an unknown database at login: MariaDB’s own error reaches the client unchanged, and failed logins make no new accounts', async () => {
    const missing = `${h.database}_nope`;
    const before = await h.leaseAccounts();
    for (let i = 0; i < 5; i++) {
      // What MariaDB says to the role's account direct: 1044 (the role has no rights there,
      // so MariaDB does not tell whether it exists) or 1049; never meshgate's own 1105.
      await assert.rejects(connect('analytics', missing), (e: Error & { errno?: number; sqlState?: string }) => {
        assert.ok(e.errno === 1044 || e.errno === 1049, `errno ${e.errno}: ${e.message}`);
        assert.equal(e.sqlState, '42000');
        assert.match(e.message, new RegExp(`^(Access denied for user 'mg-shop\\.analytics-[a-z2-7]{8}'@'%' to database|Unknown database) '${missing}'$`));
        return true;
      });
    }
    const after = await h.leaseAccounts();
    assert.ok(after.length <= before.length + 1, `one lease at most for the identity, however many logins failed: ${after.join(', ')}`);
    const leases = await h.meshgate.credentials!.leases.list({ states: ['active'], principal: STANDARD_WORKLOADS.analytics });
    assert.ok(leases.length <= 1, `active leases for analytics: ${leases.length}`);
  });

  it('the first login of an identity that fails (unknown database) leaves no account, nor do the next; a good login then works', async () => {
    const principal = NEWCOMERS.newcomer;
    const leasesOf = () => h.meshgate.credentials!.leases.list({ states: ['creating', 'active', 'revoking', 'revoked'], principal });
    assert.deepEqual(await leasesOf(), [], 'a fresh identity');
    const missing = `${h.database}_nope`;
    for (let i = 0; i < 3; i++) {
      await assert.rejects(connect('newcomer', missing), (e: Error & { errno?: number }) => e.errno === 1044 || e.errno === 1049);
      const leases = await leasesOf();
      assert.ok(leases.length > 0, 'the login did make a lease (and an account) to try');
      assert.deepEqual(await existingAccounts(leases.map((l) => l.username)), [], `no account left after failed login ${i + 1}`);
      assert.deepEqual(leases.map((l) => l.state), leases.map(() => 'revoked'));
    }
    const good = await connect('newcomer');
    try {
      assert.match((await whoAmI(good)).u, /^mg-shop\.newcomer-/);
    } finally {
      await good.end();
    }
  });

  it('a failed login does not drop an account another session of the identity uses', async () => {
    const open = await connect('latecomer');
    try {
      const { u } = await whoAmI(open);
      await assert.rejects(connect('latecomer', `${h.database}_nope`), (e: Error & { errno?: number }) => e.errno === 1044 || e.errno === 1049);
      assert.deepEqual(await existingAccounts([u.replace(/@%$/, '')]), [u.replace(/@%$/, '')]);
      const again = await connect('latecomer');
      try {
        assert.equal((await whoAmI(again)).u, u, 'the next session still gets that lease');
      } finally {
        await again.end();
      }
      assert.equal((await whoAmI(open)).u, u);
    } finally {
      await open.end();
    }
  });

  it('an identity policy denies gets no MariaDB account', async () => {
    const accounts = await h.leaseAccounts();
    const conn = connect('stranger');
    await assert.rejects(conn, /MG_POLICY_DENIED/);
    assert.deepEqual(await h.leaseAccounts(), accounts);
  });
});
