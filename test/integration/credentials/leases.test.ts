/**
 * The lease manager against the real MariaDB and the embedded store, with an injected
 * clock: renewal while in use, rotation before the max TTL (open connections of the old
 * account go on), reaping at expiry, single-flight creation.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { LeaseManager } from '../../../src/credentials/leases.ts';
import { openMariadbAccounts } from '../../../src/credentials/mariadb-accounts.ts';
import type { Identity } from '../../../src/identity/types.ts';
import { silentLogger } from '../../../src/log.ts';
import { openEmbeddedStore } from '../../../src/store/index.ts';
import type { StateStore } from '../../../src/store/types.ts';
import { makeTempDir } from '../../helpers/certs.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { leaseAccountsOf, MARIADB } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

const MINUTE = 60_000;
const identity = (sa: string): Identity => ({
  spiffeId: `spiffe://test.local/ns/leases/sa/${sa}`,
  trustDomain: 'test.local',
  namespace: 'leases',
  serviceAccount: sa,
  principal: `test.local/ns/leases/sa/${sa}`,
  authMethod: 'mtls',
  certificate: { serialNumber: '', notBefore: '', notAfter: '', fingerprint256: '' },
});

describe('lease manager', { skip: missing }, () => {
  const role = `mgt_leases_${randomBytes(3).toString('hex')}`;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let store: StateStore;
  let clock = Date.now();
  let manager: LeaseManager;
  /** Accounts this test's lease manager made (its store names each before it exists) that still exist. */
  const leaseAccounts = () => leaseAccountsOf(store);
  const accounts = openMariadbAccounts({ host: MARIADB.host, port: MARIADB.port, user: 'root', password: '' });

  before(async () => {
    const admin = await mysql.createConnection({ host: MARIADB.host, port: MARIADB.port, user: 'root' });
    await admin.query(`CREATE ROLE \`${role}\``);
    await admin.end();
    tmp = await makeTempDir('meshgate-leases-');
    store = await openEmbeddedStore(tmp.dir, { owner: 'test' });
    manager = new LeaseManager({
      store,
      accounts,
      owner: 'test',
      timings: { sessionTtlMs: 10 * MINUTE, sessionMaxTtlMs: 60 * MINUTE, issuedTtlMs: 5 * MINUTE, issuedMaxTtlMs: 15 * MINUTE },
      log: silentLogger,
      now: () => clock,
    });
  });
  after(async () => {
    // Setup may have stopped anywhere before these were assigned.
    const [setUpManager, setUpStore, setUpTmp] = [manager as LeaseManager | undefined, store as StateStore | undefined, tmp as typeof tmp | undefined];
    let left: string[] = [];
    await cleanup(
      () => setUpManager?.close(),
      async () => {
        if (setUpStore === undefined) return;
        for (const lease of await store.listLeases({ states: ['active'] })) await accounts.dropAccount(lease);
        left = await leaseAccounts();
      },
      async () => {
        const admin = await mysql.createConnection({ host: MARIADB.host, port: MARIADB.port, user: 'root' });
        await admin.query(`DROP ROLE IF EXISTS \`${role}\``);
        await admin.end();
      },
      () => accounts.close(),
      () => setUpStore?.close(),
      () => setUpTmp?.cleanup(),
    );
    assert.deepEqual(left, [], 'every account this manager made is dropped');
  });

  it('creates one lease per identity and role, even for concurrent sessions', async () => {
    const id = identity('single');
    const all = await Promise.all([1, 2, 3, 4].map(() => manager.sessionCredential(id, role, null)));
    assert.equal(new Set(all.map((c) => c.lease.id)).size, 1);
    assert.equal((await leaseAccounts()).filter((u) => u.startsWith('mg-leases.single-')).length, 1);
  });

  it('renews a lease while sessions hold it, and reaps it once nobody does and it expires', async () => {
    const before = structuredClone(manager.operations);
    const credential = await manager.sessionCredential(identity('renew'), role, null);
    manager.hold(credential.lease.id);
    clock += 6 * MINUTE;
    await manager.maintain();
    const renewed = await store.getLease(credential.lease.id);
    assert.equal(renewed?.expiresAt, clock + 10 * MINUTE);
    manager.release(credential.lease.id);
    clock += 11 * MINUTE;
    const { reaped } = await manager.maintain();
    assert.ok(reaped >= 1);
    assert.equal((await store.getLease(credential.lease.id))?.state, 'revoked');
    assert.ok(!(await leaseAccounts()).includes(credential.username));
    // What metrics read (meshgate_lease_operations_total): one creation, renewal and revocation at least.
    const done = (op: keyof typeof before) => manager.operations[op].completed - before[op].completed;
    assert.deepEqual([done('create'), done('renew') >= 1, done('revoke') >= 1], [1, true, true]);
    assert.equal(manager.operations.create.failed + manager.operations.revoke.failed, before.create.failed + before.revoke.failed);
  });

  it('rotates before the max TTL: new sessions get a new account, a connection on the old one goes on', async () => {
    const id = identity('rotate');
    const old = await manager.sessionCredential(id, role, null);
    const open = await mysql.createConnection({ host: MARIADB.host, port: MARIADB.port, user: old.username, password: old.password });
    manager.hold(old.lease.id);
    // Keep it renewed up to the point where less than half a TTL is left before its max.
    for (let t = 0; t < 55; t += 4) {
      clock += 4 * MINUTE;
      await manager.maintain();
    }
    const fresh = await manager.sessionCredential(id, role, null);
    assert.notEqual(fresh.username, old.username);
    for (let i = 0; i < 50 && (await store.getLease(old.lease.id))?.state !== 'revoked'; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await store.getLease(old.lease.id))?.state, 'revoked');
    assert.ok(!(await leaseAccounts()).includes(old.username), 'the old account is dropped');
    const [rows] = await open.query<mysql.RowDataPacket[]>('SELECT 1 AS one');
    assert.equal(rows[0]!.one, 1, 'an open connection of the rotated account finishes undisturbed');
    await open.end();
  });

  it('refuses an issued TTL above the maximum before creating anything', async () => {
    const accountsNow = await leaseAccounts();
    await assert.rejects(manager.issue(identity('ci'), role, null, 16 * MINUTE), (error: Error & { code?: string }) => error.code === 'MG_LEASE_TTL_TOO_LONG');
    assert.deepEqual(await leaseAccounts(), accountsNow);
  });
});
