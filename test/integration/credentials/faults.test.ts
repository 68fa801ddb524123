/**
 * Dynamic credentials when things go wrong, through a real meshgate whose MariaDB sits
 * behind a TCP proxy the test can stop: MariaDB gone (or restarting) at lease time, a
 * policy role MariaDB does not have, a TTL above the maximum, a revoked lease used again,
 * and revocation ending an open session.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import type { Identity } from '../../../src/identity/types.ts';
import { accountsWithPrefix, MARIADB, startHarness, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

const RUN = randomBytes(3).toString('hex');
const NAME = `flt${RUN}`;
const NAMESPACE = `flt${RUN}`;
const GHOST_ROLE = `no_such_role_${RUN}`;
const spiffe = (sa: string) => `spiffe://${TRUST_DOMAIN}/ns/${NAMESPACE}/sa/${sa}`;
const principal = (sa: string) => spiffe(sa).slice('spiffe://'.length);
const WORKLOADS = {
  app: spiffe('app'),
  down: spiffe('down'),
  retry: spiffe('retry'),
  halfway: spiffe('halfway'),
  ghost: spiffe('ghost'),
  session: spiffe('session'),
};

const POLICY = `
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: faults }
spec:
  action: ALLOW
  rules:
    - id: writers
      from: [{ source: { principals: ["${principal('app')}", "${principal('down')}", "${principal('retry')}", "${principal('halfway')}", "${principal('session')}"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{rw}" } }]
    - id: ghost
      from: [{ source: { principals: ["${principal('ghost')}"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "${GHOST_ROLE}" } }]
`;

const identity = (sa: string): Identity => ({
  spiffeId: spiffe(sa),
  trustDomain: TRUST_DOMAIN,
  namespace: NAMESPACE,
  serviceAccount: sa,
  principal: principal(sa),
  authMethod: 'mtls',
  certificate: { serialNumber: '', notBefore: '', notAfter: '', fingerprint256: '' },
});

/** This run's lease accounts (others may run tests against the same MariaDB). */
const ours = () => accountsWithPrefix(`mg-${NAMESPACE}.`);

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, sleep(ms).then(() => Promise.reject(new Error(`${what} did not happen within ${ms} ms`)))]);
}

describe('dynamic credentials: faults', { skip: missing, timeout: 120_000 }, () => {
  let proxy: TcpProxy;
  let h: Harness;
  let rw: string;
  const connect = (workload: string) =>
    mysql.createConnection({ host: '127.0.0.1', port: h.port, user: workload, database: h.database, ssl: h.ssl(workload), connectTimeout: 20_000 });
  const whoAmI = async (conn: mysql.Connection) => {
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u, CURRENT_ROLE() AS r');
    return { user: String(rows[0]!['u']).replace(/@%$/, ''), role: rows[0]!['r'] as string | null };
  };
  const store = () => h.meshgate.credentials!.store;
  const leases = () => h.meshgate.credentials!.leases;

  before(async () => {
    proxy = await startTcpProxy({ host: MARIADB.host, port: MARIADB.port });
    h = await startHarness({
      name: NAME,
      workloads: WORKLOADS,
      credentials: 'dynamic',
      policy: POLICY,
      setupSql: ['CREATE TABLE {db}.t (id INT PRIMARY KEY)'],
      config: (input) => {
        // Sessions and meshgate's admin connection both reach MariaDB through the proxy.
        input.upstream.port = proxy.port;
      },
    });
    rw = h.roles.rw;
  });

  after(async () => {
    // Shutdown drops the session leases, which needs MariaDB reachable.
    await cleanup(
      () => proxy?.start(),
      () => h?.stop(),
      () => proxy?.close(),
    );
    assert.deepEqual(await ours(), [], 'no lease account of this run is left');
  });

  it('MariaDB down at lease time: a clear error, no half-created account, nothing recorded; works again once MariaDB is back', async () => {
    // A healthy session first, so the admin pool and the upstream pool have connections to lose.
    const warm = await connect('app');
    await warm.query('SELECT 1');
    await warm.end();

    const accountsBefore = await ours();
    await proxy.stop();
    const started = Date.now();
    await assert.rejects(connect('down'), (error: Error) => {
      assert.match(error.message, /\[MG_UPSTREAM_UNAVAILABLE\]/);
      assert.match(error.message, /cannot reach MariaDB at 127\.0\.0\.1:\d+ to check a role .*4 attempts/);
      return true;
    });
    assert.ok(Date.now() - started < 10_000, 'bounded retries, not a hang');
    assert.deepEqual(await ours(), accountsBefore, 'no half-created account');
    const records = await store().listLeases({ principal: WORKLOADS.down });
    // The role check runs first, so an unreachable MariaDB is found before anything is recorded.
    assert.equal(records.length, 0);

    await proxy.start();
    const conn = await connect('down');
    try {
      const me = await whoAmI(conn);
      assert.match(me.user, new RegExp(`^mg-${NAMESPACE}\\.down-[a-z2-7]{8}$`));
      assert.equal(me.role, rw);
    } finally {
      await conn.end();
    }
    const live = await store().listLeases({ principal: WORKLOADS.down, states: ['active'] });
    assert.equal(live.length, 1);
  });

  it('MariaDB restarting at lease time: the account is created after retries with backoff', async () => {
    // Cut every connection the admin pool holds, so the next admin operation must connect.
    await proxy.stop();
    await proxy.start();
    await sleep(50);
    const rejectedBefore = proxy.rejected;
    proxy.rejectNext(2);
    const conn = await connect('retry');
    try {
      assert.equal(proxy.rejected - rejectedBefore, 2, 'the first two connection attempts were cut off');
      const me = await whoAmI(conn);
      assert.match(me.user, new RegExp(`^mg-${NAMESPACE}\\.retry-`));
      assert.equal(me.role, rw);
    } finally {
      await conn.end();
    }
    const records = await store().listLeases({ principal: WORKLOADS.retry });
    assert.deepEqual(records.map((r) => r.state), ['active']);
  });

  it(
    'MariaDB lost right after CREATE USER ran: the failed lease leaves no account behind (now or after a sweep)',
    async () => {
      const accountsBefore = await ours();
      // Fresh admin connections, so the cut lands on one the proxy sees from the start.
      await proxy.stop();
      await proxy.start();
      await sleep(50);
      const cut = proxy.cutAfter('CREATE USER');
      try {
        await assert.rejects(connect('halfway'), /\[MG_UPSTREAM_UNAVAILABLE\]/);
        await cut;
        // The account may exist and MariaDB is gone: the record stays `creating` for the reaper.
        const [record] = await store().listLeases({ principal: WORKLOADS.halfway });
        assert.equal(record?.state, 'creating');
        await proxy.start();
        await leases().maintain();
        assert.deepEqual(await ours(), accountsBefore, `no account left: ${record?.username}`);
        const [after] = await store().listLeases({ principal: WORKLOADS.halfway });
        assert.deepEqual([after?.state, after?.revokeReason], ['revoked', 'creation was interrupted']);
      } finally {
        await proxy.start();
        for (const username of (await ours()).filter((user) => user.startsWith(`mg-${NAMESPACE}.halfway-`))) {
          await h.meshgate.credentials!.accounts.dropAccount({ username, userHost: '%' });
        }
      }
    },
  );

  it('a policy role MariaDB does not have: MG_LEASE_ROLE_UNKNOWN, and no account', async () => {
    const accountsBefore = await ours();
    await assert.rejects(connect('ghost'), (error: Error) => {
      assert.match(error.message, /\[MG_LEASE_ROLE_UNKNOWN\]/);
      assert.match(error.message, new RegExp(`MariaDB has no role '${GHOST_ROLE}'`));
      return true;
    });
    assert.deepEqual(await ours(), accountsBefore);
    // Checked before a record is written: a missing role leaves no trace in the store either.
    assert.deepEqual(await store().listLeases({ principal: WORKLOADS.ghost }), []);
  });

  it('an issued TTL above the maximum: MG_LEASE_TTL_TOO_LONG before anything is created', async () => {
    const accountsBefore = await ours();
    const recordsBefore = await store().listLeases();
    await assert.rejects(leases().issue(identity('ci-greedy'), rw, h.database, 2 * 3_600_000), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'MG_LEASE_TTL_TOO_LONG');
      assert.match(error.message, /above the maximum of 3600 s/);
      return true;
    });
    assert.deepEqual(await ours(), accountsBefore);
    assert.equal((await store().listLeases()).length, recordsBefore.length, 'no lease record either');
  });

  it('a revoked issued lease: its open connection is killed, MariaDB refuses a new login, and a second revoke does nothing', async () => {
    const issued = await leases().issue(identity('ci'), rw, h.database, 60_000);
    assert.equal(issued.lease.purpose, 'issued');
    const direct = { host: MARIADB.host, port: MARIADB.port, user: issued.username, password: issued.password, database: h.database };
    const open = await mysql.createConnection(direct);
    open.on('error', () => undefined);
    const [rows] = await open.query<mysql.RowDataPacket[]>('SELECT CURRENT_ROLE() AS r');
    assert.equal(rows[0]!['r'], rw, 'the issued account works directly against MariaDB');

    const revoked = await leases().revoke({ leaseId: issued.lease.id }, 'test: revoke an issued lease');
    assert.deepEqual(revoked.map((r) => [r.id, r.state, r.revokeReason]), [[issued.lease.id, 'revoked', 'test: revoke an issued lease']]);
    await assert.rejects(open.query('SELECT 1'), 'its open connection was killed');
    open.destroy();
    await assert.rejects(mysql.createConnection(direct), (error: Error & { errno?: number; code?: string }) => {
      // 1045, or 1698 when MariaDB first had the client switch auth plugins: "Access denied" both.
      assert.ok([1045, 1698].includes(error.errno ?? 0), `${error.code} ${error.errno}`);
      assert.match(error.message, /^Access denied for user '/);
      return true;
    });
    assert.ok(!(await ours()).includes(issued.username));

    const again = await leases().revoke({ leaseId: issued.lease.id }, 'test: revoke twice');
    assert.deepEqual(again, [], 'no double revoke');
    const record = await store().getLease(issued.lease.id);
    assert.equal(record?.revokeReason, 'test: revoke an issued lease', 'the first revocation stays on record');
  });

  it('revoking a session lease cuts the open session through meshgate; the next session gets a new account', async () => {
    const conn = await connect('session');
    const lost = new Promise<Error>((resolve) => conn.on('error', resolve));
    const before = await whoAmI(conn);
    assert.equal(before.role, rw);
    const [lease] = await store().listLeases({ principal: WORKLOADS.session, states: ['active'] });
    assert.equal(lease?.username, before.user);

    const revoked = await leases().revoke({ leaseId: lease.id }, 'test: revoke a session lease');
    assert.equal(revoked.length, 1);
    const error = await within(lost, 5000, 'the client noticing its session ended');
    assert.match(String((error as Error & { code?: string }).code), /PROTOCOL_CONNECTION_LOST|ECONNRESET/);
    await assert.rejects(conn.query('SELECT 1'));
    conn.destroy();
    assert.ok(!(await ours()).includes(before.user), 'the account is dropped');

    const next = await connect('session');
    try {
      const after = await whoAmI(next);
      assert.match(after.user, new RegExp(`^mg-${NAMESPACE}\\.session-`));
      assert.notEqual(after.user, before.user, 'a new account for the new lease');
      await next.query('INSERT INTO t VALUES (1)');
    } finally {
      await next.end();
    }
  });
});
