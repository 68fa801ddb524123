/**
 * openMariadbAccounts against a real MariaDB 10.11 at 127.0.0.1:3306 (root, empty password
 * sets the scene). The admin used by the tests holds only the privileges documented at the
 * top of mariadb-accounts.ts, so a missing one shows up here.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { inspect } from 'node:util';
import mysql from 'mysql2/promise';
import type { RowDataPacket } from 'mysql2/promise';
import { isMeshgateError, type ErrorCode } from '../../../src/errors/index.ts';
import { accountNameFor, randomLeaseSuffix, randomPassword } from '../../../src/credentials/account-names.ts';
import { MANAGED_USER_PREFIX, openMariadbAccounts, type MariadbAccountsOptions } from '../../../src/credentials/mariadb-accounts.ts';
import type { ManagedAccount } from '../../../src/credentials/types.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

const HOST = '127.0.0.1';
const PORT = 3306;
const run = randomBytes(4).toString('hex');
const role = `mgt_acct_${run}`;
/** Exists, but the test admin does not hold it WITH ADMIN OPTION. */
const foreignRole = `mgt_acct_${run}_foreign`;
/** In mysql.user as a role but unknown to the server's privilege cache, so GRANT fails after CREATE USER. */
const ghostRole = `mgt_acct_${run}_ghost`;
const database = `mgt_acct_${run}`;
const admin = { user: `mgt_acct_admin_${run}`, password: randomPassword() };
const rotatingAdmin = { user: `mgt_acct_admin_${run}_rot`, password: randomPassword() };
const fast = { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 };
const created = new Set<string>();

let root: mysql.Connection;

function newAccount(): ManagedAccount {
  const username = accountNameFor(`spiffe://test.example/ns/mgt/sa/acct-${run}`, randomLeaseSuffix());
  created.add(username);
  return { username, userHost: '%' };
}

function open(overrides: Partial<MariadbAccountsOptions> = {}) {
  return openMariadbAccounts({ host: HOST, port: PORT, ...admin, retry: fast, ...overrides });
}

async function login(user: string, password: string, port = PORT): Promise<mysql.Connection> {
  return mysql.createConnection({ host: HOST, port, user, password, connectTimeout: 3000 });
}

/**
 * A login to a just-dropped account fails with 1045 most of the time and with 1698 in about
 * one try in five (observed on 10.11.19 with mysql2); both mean "refused".
 */
async function assertLoginRefused(user: string, password: string): Promise<void> {
  await assert.rejects(login(user, password), (error: unknown) => {
    assert.ok(['ER_ACCESS_DENIED_ERROR', 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR'].includes(String((error as { code?: unknown }).code)), inspect(error));
    return true;
  });
}

async function accountRows(username: string): Promise<number> {
  const [rows] = await root.query<RowDataPacket[]>('SELECT 1 FROM mysql.user WHERE User = ?', [username]);
  return rows.length;
}

function rejectsWith(code: ErrorCode, check: (message: string) => void = () => undefined) {
  return (error: unknown): boolean => {
    assert.ok(isMeshgateError(error), `expected a MeshgateError, got ${inspect(error)}`);
    assert.equal(error.code, code, error.message);
    check(error.message);
    return true;
  };
}

function assertNoSecret(error: unknown, secrets: readonly string[]): void {
  const text = inspect(error, { depth: 8 }) + String(error);
  for (const secret of secrets) assert.ok(!text.includes(secret), `a password leaked into the error: ${text}`);
}

before(async () => {
  if (missing) return;
  root = await mysql.createConnection({ host: HOST, port: PORT, user: 'root', password: '' });
  await root.query(`CREATE ROLE \`${role}\``);
  await root.query(`CREATE ROLE \`${foreignRole}\``);
  await root.query(`CREATE DATABASE \`${database}\``);
  await root.query(`CREATE TABLE \`${database}\`.t (id INT PRIMARY KEY)`);
  await root.query(`INSERT INTO \`${database}\`.t VALUES (42)`);
  await root.query(`GRANT SELECT ON \`${database}\`.* TO \`${role}\``);
  await root.query(`INSERT INTO mysql.global_priv (Host, User, Priv) VALUES ('', ?, '{"access":0,"is_role":true}')`, [ghostRole]);
  for (const account of [admin, rotatingAdmin]) {
    await root.query("CREATE USER ?@'%' IDENTIFIED BY ?", [account.user, account.password]);
    await root.query("GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO ?@'%'", [account.user]);
    await root.query("GRANT SELECT ON mysql.user TO ?@'%'", [account.user]);
    await root.query(`GRANT \`${role}\` TO ?@'%' WITH ADMIN OPTION`, [account.user]);
  }
});

after(async () => {
  if (root === undefined) return;
  // Each step on its own: a failed one must not leave the others' objects behind.
  await cleanup(
    async () => {
      for (const username of created) await root.query("DROP USER IF EXISTS ?@'%'", [username]);
    },
    async () => {
      for (const user of [admin.user, rotatingAdmin.user]) await root.query("DROP USER IF EXISTS ?@'%'", [user]);
    },
    () => root.query(`DROP ROLE IF EXISTS \`${role}\`, \`${foreignRole}\``),
    () => root.query("DELETE FROM mysql.global_priv WHERE Host = '' AND User = ?", [ghostRole]),
    () => root.query(`DROP DATABASE IF EXISTS \`${database}\``),
    () => root.end(),
  );
});

describe('openMariadbAccounts', { skip: missing }, () => {
  test('create: the account logs in with its role active and reads what the role may read; drop: it cannot log in', async () => {
    const accounts = open();
    try {
      const account = newAccount();
      const password = randomPassword();
      assert.equal(await accounts.roleExists(role), true);
      await accounts.createAccount(account, password, role);

      const conn = await login(account.username, password);
      try {
        const [[current]] = await conn.query<RowDataPacket[]>('SELECT CURRENT_ROLE() AS r');
        assert.equal(current?.['r'], role);
        const [[row]] = await conn.query<RowDataPacket[]>(`SELECT id FROM \`${database}\`.t`);
        assert.equal(row?.['id'], 42);
      } finally {
        await conn.end();
      }

      const listed = await accounts.listManagedAccounts();
      assert.ok(listed.some((a) => a.username === account.username && a.userHost === '%'));
      assert.ok(listed.every((a) => a.username.startsWith(MANAGED_USER_PREFIX)));

      assert.equal(await accounts.dropAccount(account), 'dropped');
      await assertLoginRefused(account.username, password);
      assert.equal(await accounts.dropAccount(account), 'absent');
      assert.ok(!(await accounts.listManagedAccounts()).some((a) => a.username === account.username));
    } finally {
      await accounts.close();
    }
  });

  test('an admin allowed to SET DEFAULT ROLE ... FOR others gets the same result directly', async () => {
    const accounts = openMariadbAccounts({ host: HOST, port: PORT, user: 'root', password: '', retry: fast });
    try {
      const account = newAccount();
      const password = randomPassword();
      await accounts.createAccount(account, password, role);
      const conn = await login(account.username, password);
      const [[current]] = await conn.query<RowDataPacket[]>('SELECT CURRENT_ROLE() AS r');
      await conn.end();
      assert.equal(current?.['r'], role);
      assert.equal(await accounts.dropAccount(account), 'dropped');
    } finally {
      await accounts.close();
    }
  });

  test('an unknown or malformed role is MG_LEASE_ROLE_UNKNOWN and creates nothing', async () => {
    const accounts = open();
    try {
      const account = newAccount();
      assert.equal(await accounts.roleExists(`mgt_acct_${run}_missing`), false);
      await assert.rejects(accounts.createAccount(account, randomPassword(), `mgt_acct_${run}_missing`),
        rejectsWith('MG_LEASE_ROLE_UNKNOWN', (m) => assert.match(m, /has no role 'mgt_acct_\w+_missing': create it .*to\.mariadb\.role/)));
      await assert.rejects(accounts.createAccount(account, randomPassword(), 'x`; DROP DATABASE mysql; --'),
        rejectsWith('MG_LEASE_ROLE_UNKNOWN', (m) => assert.match(m, /not a MariaDB role name/)));
      assert.equal(await accountRows(account.username), 0);
    } finally {
      await accounts.close();
    }
  });

  test('a GRANT that fails after CREATE USER leaves no account behind', async () => {
    const accounts = open();
    try {
      const account = newAccount();
      const password = randomPassword();
      assert.equal(await accounts.roleExists(ghostRole), true, 'the ghost role passes the up-front check');
      await assert.rejects(accounts.createAccount(account, password, ghostRole), rejectsWith('MG_LEASE_ROLE_UNKNOWN'));
      assert.equal(await accountRows(account.username), 0);

      const other = newAccount();
      await assert.rejects(accounts.createAccount(other, password, foreignRole), (error: unknown) => {
        rejectsWith('MG_UPSTREAM_AUTH_FAILED', (m) => assert.match(m, /WITH ADMIN OPTION/))(error);
        assertNoSecret(error, [password, admin.password]);
        return true;
      });
      assert.equal(await accountRows(other.username), 0);
    } finally {
      await accounts.close();
    }
  });

  test('a name that is already taken fails without touching the existing account or leaking the password', async () => {
    const accounts = open();
    try {
      const account = newAccount();
      const theirs = randomPassword();
      await root.query("CREATE USER ?@'%' IDENTIFIED BY ?", [account.username, theirs]);
      const ours = randomPassword();
      await assert.rejects(accounts.createAccount(account, ours, role), (error: unknown) => {
        assert.equal((error as { errno?: number }).errno, 1396, inspect(error));
        assertNoSecret(error, [ours, admin.password]);
        return true;
      });
      (await login(account.username, theirs)).destroy();
    } finally {
      await accounts.close();
    }
  });

  test('MariaDB down: MG_UPSTREAM_UNAVAILABLE after bounded retries, naming host:port, without passwords', async () => {
    const closedPort = await freePort();
    const accounts = open({ port: closedPort, retry: { attempts: 2, baseDelayMs: 20, maxDelayMs: 40 }, connectTimeoutMs: 1000 });
    const password = randomPassword();
    const started = Date.now();
    try {
      await assert.rejects(accounts.createAccount(newAccount(), password, role), (error: unknown) => {
        rejectsWith('MG_UPSTREAM_UNAVAILABLE', (m) => {
          assert.match(m, new RegExp(`127\\.0\\.0\\.1:${closedPort}`));
          assert.match(m, /ECONNREFUSED/);
          assert.match(m, /check that MariaDB is running/);
        })(error);
        assertNoSecret(error, [password, admin.password]);
        return true;
      });
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
      await assert.rejects(accounts.dropAccount(newAccount()), rejectsWith('MG_UPSTREAM_UNAVAILABLE'));
    } finally {
      await accounts.close();
    }
  });

  test('a wrong admin password is MG_UPSTREAM_AUTH_FAILED, not retried', async () => {
    const wrong = randomPassword();
    const accounts = open({ password: wrong, retry: { attempts: 4, baseDelayMs: 2000, maxDelayMs: 2000 } });
    const started = Date.now();
    try {
      await assert.rejects(accounts.listManagedAccounts(), (error: unknown) => {
        rejectsWith('MG_UPSTREAM_AUTH_FAILED', (m) => assert.match(m, /upstream\.credentials\.admin/))(error);
        assertNoSecret(error, [wrong, admin.password]);
        return true;
      });
      assert.ok(Date.now() - started < 1500, 'a refused login must not be retried with backoff');
    } finally {
      await accounts.close();
    }
  });

  test('changeAdminPassword: the old password stops working and the object keeps working', async () => {
    const accounts = open({ ...rotatingAdmin });
    try {
      await accounts.listManagedAccounts(); // holds a pooled connection opened with the old password
      const next = randomPassword();
      await accounts.changeAdminPassword(next);
      await assertLoginRefused(rotatingAdmin.user, rotatingAdmin.password);
      (await login(rotatingAdmin.user, next)).destroy();

      const account = newAccount();
      await accounts.createAccount(account, randomPassword(), role);
      assert.equal(await accounts.dropAccount(account), 'dropped');
      rotatingAdmin.password = next;
    } finally {
      await accounts.close();
    }
  });

  test('dropAccount leaves open sessions running; with killSessions it ends them', async () => {
    const accounts = open();
    const account = newAccount();
    const password = randomPassword();
    let session: mysql.Connection | undefined;
    try {
      await accounts.createAccount(account, password, role);
      session = await login(account.username, password);
      session.on('error', () => undefined); // the server closes it under us below

      assert.equal(await accounts.dropAccount(account), 'dropped');
      const [[alive]] = await session.query<RowDataPacket[]>('SELECT 1 AS one');
      assert.equal(alive?.['one'], 1, 'rotation must not disturb an authenticated session');
      await assertLoginRefused(account.username, password);

      assert.equal(await accounts.dropAccount(account, { killSessions: true }), 'absent');
      await assert.rejects(session.query('SELECT 1'));
      const [left] = await root.query<RowDataPacket[]>('SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?', [account.username]);
      assert.equal(left.length, 0);
    } finally {
      session?.destroy();
      await accounts.close();
    }
  });

  test('a CREATE USER whose reply is lost is retried without failing or leaving a duplicate', async () => {
    const proxy = await dropFirstReplyTo('CREATE USER');
    const accounts = open({ port: proxy.port });
    try {
      const account = newAccount();
      const password = randomPassword();
      await accounts.createAccount(account, password, role);
      assert.equal(proxy.tripped(), true, 'the proxy cut the connection after CREATE USER ran');
      assert.equal(await accountRows(account.username), 1);
      const conn = await login(account.username, password);
      const [[current]] = await conn.query<RowDataPacket[]>('SELECT CURRENT_ROLE() AS r');
      await conn.end();
      assert.equal(current?.['r'], role);
      assert.equal(await accounts.dropAccount(account), 'dropped');
    } finally {
      await accounts.close();
      await proxy.close();
    }
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A TCP relay to MariaDB that lets the first statement containing `marker` reach the server,
 * then cuts the connection instead of relaying the answer: the "reply lost" case.
 */
async function dropFirstReplyTo(marker: string): Promise<{ port: number; tripped(): boolean; close(): Promise<void> }> {
  let tripped = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(PORT, HOST);
    let armed = false;
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (data) => {
      if (!tripped && data.includes(marker)) armed = true;
      upstream.write(data);
    });
    upstream.on('data', (data) => {
      if (armed) {
        armed = false;
        tripped = true;
        client.destroy();
        return;
      }
      client.write(data);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    tripped: () => tripped,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
