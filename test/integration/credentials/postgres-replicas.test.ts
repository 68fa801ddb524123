/**
 * Several meshgate replicas sharing leases in PostgreSQL, against the real PostgreSQL and
 * MariaDB: a lease one replica made is renewed and revoked by another, two replicas
 * revoking one lease at once drop its account exactly once, and with the store gone new
 * leases fail closed (no MariaDB account) while sessions already open keep working.
 *
 * MESHGATE_TEST_PG_URL points elsewhere than the default (trust auth on 127.0.0.1:5432, db test).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { LeaseManager } from '../../../src/credentials/leases.ts';
import { openMariadbAccounts } from '../../../src/credentials/mariadb-accounts.ts';
import type { MariadbAccounts } from '../../../src/credentials/types.ts';
import type { Identity } from '../../../src/identity/types.ts';
import { resolveConfig } from '../../../src/config/load.ts';
import { silentLogger } from '../../../src/log.ts';
import { startMeshgate } from '../../../src/server.ts';
import { openPostgresStore } from '../../../src/store/postgres.ts';
import type { StateStore } from '../../../src/store/types.ts';
import { accountsWithPrefix, MARIADB, startHarness, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb', 'postgres');

const PG_URL = process.env.MESHGATE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUN = randomBytes(3).toString('hex');
const NAME = `repl${RUN}`;
const NAMESPACE = `repl${RUN}`;
const SCHEMA = `mgt_repl_${RUN}`;
const MESHGATE_SCHEMA = `mgt_repl_${RUN}_mg`;
const MINUTE = 60_000;
const TIMINGS = { sessionTtlMs: 10 * MINUTE, sessionMaxTtlMs: 60 * MINUTE, issuedTtlMs: 5 * MINUTE, issuedMaxTtlMs: 15 * MINUTE };

const spiffe = (sa: string) => `spiffe://${TRUST_DOMAIN}/ns/${NAMESPACE}/sa/${sa}`;
const principal = (sa: string) => spiffe(sa).slice('spiffe://'.length);
const identity = (sa: string): Identity => ({
  spiffeId: spiffe(sa),
  trustDomain: TRUST_DOMAIN,
  namespace: NAMESPACE,
  serviceAccount: sa,
  principal: principal(sa),
  authMethod: 'mtls',
  certificate: { serialNumber: '', notBefore: '', notAfter: '', fingerprint256: '' },
});

const POLICY = `
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: replicas }
spec:
  action: ALLOW
  rules:
    - id: apps
      from: [{ source: { namespaces: ["${NAMESPACE}"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{rw}" } }]
`;

/** The real account manager, counting what each replica asks of MariaDB. */
function counting(real: MariadbAccounts): MariadbAccounts & { readonly calls: { create: number; drop: number; dropped: number } } {
  const calls = { create: 0, drop: 0, dropped: 0 };
  return {
    calls,
    createAccount: (account, password, role, requirement) => {
      calls.create++;
      return real.createAccount(account, password, role, requirement);
    },
    dropAccount: async (account, options) => {
      calls.drop++;
      const result = await real.dropAccount(account, options);
      if (result === 'dropped') calls.dropped++;
      return result;
    },
    inspectAccount: (account) => real.inspectAccount(account),
    roleExists: (role) => real.roleExists(role),
    listManagedAccounts: () => real.listManagedAccounts(),
    changeAdminPassword: (password) => real.changeAdminPassword(password),
    close: () => real.close(),
  };
}

async function pgAdmin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function viaPort(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.hostname = '127.0.0.1';
  parsed.port = String(port);
  return parsed.toString();
}

/** This run's lease accounts (others may run tests against the same MariaDB). */
const ours = (sa?: string) => accountsWithPrefix(`mg-${NAMESPACE}.${sa === undefined ? '' : `${sa}-`}`);

async function canLogIn(user: string, password: string): Promise<boolean> {
  try {
    const conn = await mysql.createConnection({ host: MARIADB.host, port: MARIADB.port, user, password });
    await conn.end();
    return true;
  } catch (error) {
    // MariaDB answers a login of an account that does not exist with 1045, or 1698 when it
    // had the client switch auth plugins first; both are "Access denied".
    if ([1045, 1698].includes((error as { errno?: number }).errno ?? 0)) return false;
    throw error;
  }
}

describe('leases shared by replicas in PostgreSQL', { skip: missing, timeout: 120_000 }, () => {
  let h: Harness;
  let pgProxy: TcpProxy;
  let tmp: string;
  const rootAccounts = openMariadbAccounts({ host: MARIADB.host, port: MARIADB.port, user: MARIADB.user, password: MARIADB.password });
  const stores: StateStore[] = [];
  const managers: LeaseManager[] = [];
  let storeA: StateStore;
  let storeB: StateStore;
  let accountsA: ReturnType<typeof counting>;
  let accountsB: ReturnType<typeof counting>;
  let replicaA: LeaseManager;
  let replicaB: LeaseManager;
  let role: string;

  const replica = (owner: string, store: StateStore, accounts: MariadbAccounts) => {
    const manager = new LeaseManager({ store, accounts, owner, timings: TIMINGS, log: silentLogger });
    managers.push(manager);
    return manager;
  };

  before(async () => {
    await pgAdmin('SELECT 1'); // fails early and clearly when PostgreSQL is not there
    tmp = await mkdtemp(join(tmpdir(), 'meshgate-repl-'));
    pgProxy = await startTcpProxy({ host: new URL(PG_URL).hostname, port: Number(new URL(PG_URL).port || 5432) });
    const urlFile = join(tmp, 'pg-url');
    await writeFile(urlFile, viaPort(PG_URL, pgProxy.port), { mode: 0o600 });
    h = await startHarness({
      name: NAME,
      workloads: { app: spiffe('app'), late: spiffe('late'), revoked: spiffe('revoked') },
      credentials: 'dynamic',
      policy: POLICY,
      setupSql: ['CREATE TABLE {db}.t (id INT PRIMARY KEY)'],
      config: (input) => {
        input.state = { postgres: { url: { file: urlFile }, schema: MESHGATE_SCHEMA }, replicaId: `meshgate-${RUN}` };
      },
    });
    role = h.roles.rw;
    storeA = await openPostgresStore({ connectionString: PG_URL, schema: SCHEMA, owner: 'replica-a' });
    stores.push(storeA);
    storeB = await openPostgresStore({ connectionString: PG_URL, schema: SCHEMA, owner: 'replica-b' });
    stores.push(storeB);
    accountsA = counting(rootAccounts);
    accountsB = counting(rootAccounts);
    replicaA = replica('replica-a', storeA, accountsA);
    replicaB = replica('replica-b', storeB, accountsB);
  });

  after(async () => {
    // Setup may have stopped anywhere: every step runs, and whatever fails is reported after.
    await cleanup(
      () => pgProxy?.start(),
      () => h?.stop(),
      async () => {
        for (const manager of managers) await manager.close().catch(() => undefined);
      },
      async () => {
        for (const store of stores) {
          for (const lease of await store.listLeases({ states: ['creating', 'active', 'revoking'] }).catch(() => [])) {
            await rootAccounts.dropAccount(lease, { killSessions: true }).catch(() => undefined);
          }
        }
      },
      async () => {
        for (const username of await ours()) await rootAccounts.dropAccount({ username, userHost: '%' }, { killSessions: true }).catch(() => undefined);
      },
      () => Promise.all(stores.map((store) => store.close().catch(() => undefined))),
      () => rootAccounts.close(),
      () => pgProxy?.close(),
      () => pgAdmin(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE; DROP SCHEMA IF EXISTS "${MESHGATE_SCHEMA}" CASCADE`),
      () => (tmp === undefined ? undefined : rm(tmp, { recursive: true, force: true })),
    );
    assert.deepEqual(await ours(), [], 'no lease account of this run is left');
  });

  it('a lease created by replica A is renewed and then revoked by replica B', async () => {
    const credential = await replicaA.sessionCredential(identity('shared'), role, h.database);
    const id = credential.lease.id;
    assert.equal(credential.lease.owner, 'replica-a');
    assert.equal(await canLogIn(credential.username, credential.password), true);

    const seen = await replicaB.list();
    assert.ok(seen.some((lease) => lease.id === id), 'B sees the lease A made');

    const expiresAt = credential.lease.expiresAt + 5 * MINUTE;
    const renewed = await storeB.transitionLease(id, ['active'], 'active', { expiresAt });
    assert.equal(renewed?.state, 'active');
    assert.equal(renewed?.expiresAt, expiresAt);
    assert.equal(renewed?.owner, 'replica-b');
    assert.equal((await storeA.getLease(id))?.expiresAt, expiresAt, 'A reads what B wrote');

    const dropsA = accountsA.calls.drop;
    const revoked = await replicaB.revoke({ leaseId: id }, 'test: revoked on B');
    assert.deepEqual(revoked.map((lease) => [lease.id, lease.state, lease.owner, lease.revokeReason]), [[id, 'revoked', 'replica-b', 'test: revoked on B']]);
    assert.equal(accountsB.calls.dropped, 1);
    assert.equal(accountsA.calls.drop, dropsA, 'A had nothing to do');
    assert.deepEqual(await ours('shared'), []);
    assert.equal(await canLogIn(credential.username, credential.password), false);
    assert.equal((await storeA.getLease(id))?.state, 'revoked');
  });

  it(
    'after replica B revokes a session lease replica A made, A hands out a new lease, not the dropped account',
    async () => {
      const credential = await replicaA.sessionCredential(identity('stale'), role, h.database);
      await replicaB.revoke({ leaseId: credential.lease.id }, 'test: revoked on B');
      assert.equal(await canLogIn(credential.username, credential.password), false);
      // A's sweep reads its cached leases back from the store and drops the revoked one.
      await replicaA.maintain();
      const next = await replicaA.sessionCredential(identity('stale'), role, h.database);
      assert.notEqual(next.lease.id, credential.lease.id, 'A must not hand out a revoked lease');
      assert.equal(await canLogIn(next.username, next.password), true);
    },
  );

  it(
    'through meshgate: after another replica revokes its lease, the identity connects again with a new account',
    async () => {
      // A second meshgate on the same PostgreSQL schema and MariaDB: replica "b".
      const other = await startMeshgate(
        resolveConfig(
          {
            listener: { host: '127.0.0.1', port: 0, tls: { cert: join(h.dir, 'server', 'server.crt'), key: join(h.dir, 'server', 'server.key') } },
            trust: { bundles: [join(h.caDir, 'bundle.pem')], trustDomains: [TRUST_DOMAIN] },
            upstream: { host: MARIADB.host, port: MARIADB.port, credentials: { admin: { user: h.adminUser!, password: { file: join(h.dir, 'secrets', 'admin') } } } },
            state: { postgres: { url: { file: join(tmp, 'pg-url') }, schema: MESHGATE_SCHEMA }, replicaId: `meshgate-b-${RUN}` },
            policy: { dir: join(h.dir, 'policy') },
            audit: { file: join(tmp, 'audit-b.jsonl') },
          },
          join(tmp, 'meshgate-b.yaml'),
        ),
        silentLogger,
      );
      try {
        const connect = () => mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'revoked', database: h.database, ssl: h.ssl('revoked') });
        const first = await connect();
        const [rows] = await first.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u');
        const username = String(rows[0]!['u']).replace(/@%$/, '');
        await first.end();
        const [lease] = await other.credentials!.store.listLeases({ principal: spiffe('revoked'), states: ['active'] });
        assert.equal(lease?.username, username, 'replica b sees the lease replica a made');
        assert.equal((await other.credentials!.leases.revoke({ leaseId: lease.id }, 'test: revoked on replica b')).length, 1);
        assert.deepEqual(await ours('revoked'), []);
        // The client comes back to replica a (its own meshgate).
        const second = await connect();
        try {
          const [again] = await second.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u');
          assert.notEqual(String(again[0]!['u']).replace(/@%$/, ''), username);
        } finally {
          await second.end();
        }
      } finally {
        await other.close();
      }
    },
  );

  it('A and B revoking the same lease at once: exactly one drops the account', async () => {
    for (let round = 0; round < 5; round++) {
      const credential = await replicaA.issue(identity(`race${round}`), role, null, 2 * MINUTE);
      const before = { a: accountsA.calls.drop, b: accountsB.calls.drop };
      const [byA, byB] = await Promise.all([
        replicaA.revoke({ leaseId: credential.lease.id }, 'test: race A'),
        replicaB.revoke({ leaseId: credential.lease.id }, 'test: race B'),
      ]);
      const drops = accountsA.calls.drop - before.a + (accountsB.calls.drop - before.b);
      assert.equal(drops, 1, `round ${round}: one DROP USER between the two replicas`);
      assert.equal(byA.length + byB.length, 1, `round ${round}: one replica reports the revocation`);
      const winner = byA.length === 1 ? 'replica-a' : 'replica-b';
      const record = await storeA.getLease(credential.lease.id);
      assert.equal(record?.state, 'revoked');
      assert.equal(record?.owner, winner);
      assert.equal(record?.revokeReason, winner === 'replica-a' ? 'test: race A' : 'test: race B');
      assert.deepEqual(await ours(`race${round}`), []);
    }
  });

  it('PostgreSQL unreachable: new leases fail closed with MG_STORE_UNAVAILABLE and no MariaDB account; they work again when it is back', async () => {
    const storeC = await openPostgresStore({ connectionString: viaPort(PG_URL, pgProxy.port), schema: SCHEMA, owner: 'replica-c' });
    stores.push(storeC);
    const accountsC = counting(rootAccounts);
    const replicaC = replica('replica-c', storeC, accountsC);
    await pgProxy.stop();
    try {
      const started = Date.now();
      for (const attempt of [
        () => replicaC.sessionCredential(identity('nostore'), role, null),
        () => replicaC.issue(identity('nostore'), role, null, MINUTE),
      ]) {
        await assert.rejects(attempt(), (error: Error & { code?: string }) => {
          assert.equal(error.code, 'MG_STORE_UNAVAILABLE');
          // The first query may still pick a pooled connection the proxy just cut ("lost the
          // connection"); after that the pool must connect anew and is refused.
          assert.match(error.message, /(cannot reach|lost the connection to) PostgreSQL at 127\.0\.0\.1:\d+\/test/);
          return true;
        });
      }
      assert.ok(Date.now() - started < 10_000, 'fails fast');
      assert.equal(accountsC.calls.create, 0, 'MariaDB was not asked for an account');
      assert.deepEqual(await ours('nostore'), []);
    } finally {
      await pgProxy.start();
    }
    const credential = await replicaC.sessionCredential(identity('nostore'), role, null);
    assert.equal(await canLogIn(credential.username, credential.password), true);
    assert.equal((await storeA.getLease(credential.lease.id))?.state, 'active');
    await replicaC.revoke({ leaseId: credential.lease.id }, 'test: done');
  });

  it('PostgreSQL gone while meshgate runs: an open session keeps running queries; a new identity is refused with MG_STORE_UNAVAILABLE', async () => {
    const connect = (workload: string) => mysql.createConnection({ host: '127.0.0.1', port: h.port, user: workload, database: h.database, ssl: h.ssl(workload) });
    const open = await connect('app');
    try {
      await open.query('INSERT INTO t VALUES (1)');
      const [lease] = await h.meshgate.credentials!.store.listLeases({ principal: spiffe('app'), states: ['active'] });
      assert.equal(lease?.owner, `meshgate-${RUN}`);

      await pgProxy.stop();
      for (let i = 2; i <= 20; i++) await open.query('INSERT INTO t VALUES (?)', [i]);
      const [rows] = await open.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n, CURRENT_USER() AS u FROM t');
      assert.equal(Number(rows[0]!['n']), 20);
      assert.equal(String(rows[0]!['u']).replace(/@%$/, ''), lease.username);

      // A new identity needs a new lease, which needs the store: refused, nothing created.
      await assert.rejects(connect('late'), /\[MG_STORE_UNAVAILABLE\] cannot reach PostgreSQL/);
      assert.deepEqual(await ours('late'), []);
      // Still going after the refusal.
      const [again] = await open.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM t');
      assert.equal(Number(again[0]!['n']), 20);
    } finally {
      await pgProxy.start();
      await open.end();
    }
    const late = await connect('late');
    try {
      const [rows] = await late.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u');
      assert.match(String(rows[0]!['u']), new RegExp(`^mg-${NAMESPACE}\\.late-`));
    } finally {
      await late.end();
    }
  });
});
