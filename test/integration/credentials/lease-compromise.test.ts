/**
 * The takeover from issue 12, end to end on a private MariaDB with TLS: a lease account's
 * password is changed behind meshgate's back (here by root on the private server, standing in
 * for a client's `SET PASSWORD` through meshgate, which a statement filter now refuses), and
 * someone logs in with it directly. At the next login of that identity through meshgate,
 * MariaDB refuses meshgate's password: meshgate must treat the lease as compromised and revoke
 * it at once (account dropped, every connection of it killed, the direct one included), record
 * an `alert` audit event and an error log line, and give the session a new lease. Both ways
 * the refusal can come: a fresh login, and the renewal of a pooled connection.
 *
 * An account that went away by other hands (dropped outside meshgate, or its lease revoked
 * elsewhere) is not a compromise: the session gets a new lease and no alert is raised.
 * Without upstream.tls (the shared MariaDB) the taker needs nothing but the password, which
 * is the attack as the issue found it; the revocation and the alert are the same.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { cleanup } from '../../helpers/cleanup.ts';
import { captureLog } from '../../helpers/log.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { privateMariadbMissing } from '../../helpers/private-mariadb.ts';
import { serviceMissing } from '../../helpers/services.ts';
import { startTlsUpstreamHarness, type TlsUpstreamHarness } from '../../helpers/tls-upstream.ts';

const missing = privateMariadbMissing();
const sharedMissing = await serviceMissing('mariadb');
const ORDERS = STANDARD_WORKLOADS.orders;

describe('a lease whose password MariaDB refuses is revoked at once and raises an alert', { skip: missing ?? false, timeout: 180_000 }, () => {
  let h: TlsUpstreamHarness | undefined;
  const captured = captureLog();
  const opened: mysql.Connection[] = [];

  const client = async () => {
    const conn = await h!.connect('orders');
    opened.push(conn);
    return conn;
  };
  const accountOf = async (conn: mysql.Connection) => {
    const [rows] = await conn.query('SELECT CURRENT_USER() AS user');
    const user = (rows as { user: string }[])[0]!.user;
    return user.slice(0, user.lastIndexOf('@'));
  };
  const accountExists = async (account: string) => (await h!.root<unknown[]>('SELECT 1 FROM mysql.user WHERE User = ?', [account])).length > 0;
  const connectionsOf = async (account: string) => (await h!.root<unknown[]>('SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?', [account])).length;
  const leaseOf = async (account: string) => (await h!.meshgate.credentials!.leases.list({ states: ['active', 'revoking', 'revoked'] })).find((lease) => lease.username === account)!;
  const alerts = async () => (await h!.readAudit()).filter((event) => event['type'] === 'alert');
  const hijack = async (account: string) => {
    // What `SET PASSWORD = PASSWORD('hijacked')` through meshgate did before statements were filtered.
    await h!.root(`SET PASSWORD FOR ?@'%' = PASSWORD('hijacked')`, [account]);
    // The taker logs in directly (here with meshgate's certificate, as if that had leaked too:
    // without it, REQUIRE SUBJECT already stops them; upstream-tls.test.ts shows that).
    const direct = await h!.direct(account, 'hijacked', h!.upstreamCert);
    opened.push(direct);
    await direct.query('SELECT 1');
    return direct;
  };
  /** MariaDB ended the connection (KILL): the next query finds it lost, or mysql2 already closed it. */
  const killed = async (conn: mysql.Connection) => {
    await assert.rejects(
      conn.query('SELECT 1'),
      (error: { code?: string; errno?: number; message: string }) =>
        error.code === 'PROTOCOL_CONNECTION_LOST' || error.errno === 1927 || error.code === 'ECONNRESET' || error.code === 'EPIPE' || /closed state/.test(error.message),
    );
  };

  before(async () => {
    h = await startTlsUpstreamHarness({ name: 'leasecomp', log: captured.log });
  });
  after(async () => {
    await cleanup(...opened.map((conn) => () => conn.destroy()), () => h?.stop());
  });

  it('at a fresh login: the account is dropped, its connections killed (the taker’s and meshgate’s own), an alert recorded, and the session works on a new lease', async () => {
    h!.meshgate.pool!.drain();
    const holder = await client(); // keeps the lease in use, and no idle connection in the pool
    const account = await accountOf(holder);
    const lease = await leaseOf(account);
    const direct = await hijack(account);
    const alertsBefore = (await alerts()).length;

    const next = await client();
    const fresh = await accountOf(next);
    assert.notEqual(fresh, account, 'a new lease account');
    assert.deepEqual(await next.query('SELECT 1 AS ok').then(([rows]) => rows), [{ ok: 1 }]);

    assert.equal(await accountExists(account), false, 'the compromised account is dropped');
    assert.equal(await connectionsOf(account), 0, 'none of its connections is left');
    await killed(direct);
    await killed(holder);
    const revoked = await leaseOf(account);
    assert.equal(revoked.state, 'revoked');
    assert.match(revoked.revokeReason ?? '', /compromised.*password was changed outside meshgate/);

    const raised = (await alerts()).slice(alertsBefore);
    assert.equal(raised.length, 1, 'one alert');
    const alert = raised[0]!;
    assert.equal(alert['alert'], 'lease_compromised');
    assert.equal(alert['engine'], 'mysql');
    assert.equal((alert['identity'] as { spiffeId: string }).spiffeId, ORDERS);
    assert.deepEqual(alert['lease'], { id: lease.id, role: h!.role, account: `${account}@%` });
    assert.match(String(alert['reason']), /password was changed outside meshgate/);
    assert.match(String(alert['action']), /account dropped/);
    assert.match(String(alert['action']), /connections? killed/);
    assert.ok(typeof alert['sessionId'] === 'string' && alert['sessionId'] !== '');
    assert.ok(
      captured.lines.some((line) => line.level === 'error' && /compromised/.test(line.message) && line['lease'] === lease.id),
      'an error line in the log names the lease',
    );
    const text = captured.text() + JSON.stringify(raised);
    assert.equal(text.includes('hijacked'), false, 'no password in the log or the audit');
    await next.end();
  });

  it('at the renewal of a pooled connection: the same, and the session logs in with a new lease', async () => {
    const pool = h!.meshgate.pool!;
    pool.drain();
    const first = await client();
    const account = await accountOf(first);
    await first.end();
    for (let i = 0; i < 300 && pool.idleCount === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(pool.idleCount, 1, 'the connection is parked');
    const direct = await hijack(account);
    const alertsBefore = (await alerts()).length;

    const next = await client();
    assert.notEqual(await accountOf(next), account);
    assert.equal(await accountExists(account), false);
    await killed(direct);
    assert.equal(pool.idleCount, 0, 'no idle connection of the compromised lease is left');
    const raised = (await alerts()).slice(alertsBefore);
    assert.deepEqual(raised.map((event) => [event['alert'], (event['lease'] as { account: string }).account]), [['lease_compromised', `${account}@%`]]);
    await next.end();
  });

  it('an account dropped outside meshgate, or a lease revoked elsewhere, is no compromise: a new lease, no alert', async () => {
    const pool = h!.meshgate.pool!;
    pool.drain();
    const alertsBefore = (await alerts()).length;

    // Sessions stay open throughout, so every next session logs in afresh (nothing idle to renew).
    const first = await client();
    const dropped = await accountOf(first);
    await h!.root(`DROP USER ?@'%'`, [dropped]);
    const second = await client();
    const revokedElsewhere = await accountOf(second);
    assert.notEqual(revokedElsewhere, dropped);
    assert.equal((await leaseOf(dropped)).state, 'revoked');
    assert.match((await leaseOf(dropped)).revokeReason ?? '', /dropped outside meshgate/);
    assert.deepEqual(await first.query('SELECT 1 AS ok').then(([rows]) => rows), [{ ok: 1 }], 'its open session was not killed');

    // Another replica (or `creds revoke` in another process) revoked it: the store says so,
    // and the account is gone, but this process has not swept yet.
    const lease = await leaseOf(revokedElsewhere);
    const store = h!.meshgate.credentials!.store;
    await store.transitionLease(lease.id, ['active'], 'revoked', { revokedAt: Date.now(), revokeReason: 'test: revoked by another replica' });
    await h!.root(`DROP USER ?@'%'`, [revokedElsewhere]);
    const third = await client();
    assert.notEqual(await accountOf(third), revokedElsewhere);
    assert.equal((await leaseOf(revokedElsewhere)).revokeReason, 'test: revoked by another replica', 'left as the other replica recorded it');
    await third.end();

    assert.equal((await alerts()).length, alertsBefore, 'no alert');
  });
});

describe('without upstream.tls, the taker needs only the password: the lease is revoked all the same', { skip: sharedMissing, timeout: 120_000 }, () => {
  let h: Harness | undefined;
  const opened: mysql.Connection[] = [];
  const root = async <T>(sql: string, values?: unknown[]): Promise<T> => {
    const conn = await mysql.createConnection({ ...MARIADB });
    try {
      return (await conn.query(sql, values))[0] as T;
    } finally {
      await conn.end();
    }
  };

  before(async () => {
    h = await startHarness({ name: 'leasecomp_plain', workloads: { orders: ORDERS }, credentials: 'dynamic', config: (config) => (config.upstream.pool = { maxIdlePerKey: 0, idleTimeout: '5m' }) });
  });
  after(async () => {
    await cleanup(...opened.map((conn) => () => conn.destroy()), () => h?.stop());
  });

  it('SET PASSWORD, a direct login with it, then the next login through meshgate: account dropped, the direct session killed, an alert', async () => {
    const client = async () => {
      const conn = await mysql.createConnection({ host: '127.0.0.1', port: h!.port, user: 'orders', database: h!.database, ssl: h!.ssl('orders') });
      opened.push(conn);
      return conn;
    };
    const first = await client();
    const [[{ user }]] = (await first.query('SELECT CURRENT_USER() AS user')) as unknown as [[{ user: string }]];
    const account = user.slice(0, user.lastIndexOf('@'));
    // What the client did through meshgate, before statements were filtered.
    await root(`SET PASSWORD FOR ?@'%' = PASSWORD('hijacked')`, [account]);
    const direct = await mysql.createConnection({ ...MARIADB, user: account, password: 'hijacked' });
    opened.push(direct);
    await direct.query('SELECT 1');

    const next = await client();
    const [[{ user: fresh }]] = (await next.query('SELECT CURRENT_USER() AS user')) as unknown as [[{ user: string }]];
    assert.notEqual(fresh, user);
    assert.deepEqual(await root<unknown[]>('SELECT 1 FROM mysql.user WHERE User = ?', [account]), []);
    await assert.rejects(direct.query('SELECT 1'));
    const alerts = (await h!.readAudit()).filter((event) => event['type'] === 'alert');
    assert.deepEqual(alerts.map((event) => [event['alert'], (event['lease'] as { account: string }).account]), [['lease_compromised', `${account}@%`]]);
  });
});
