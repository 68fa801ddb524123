/**
 * The per-identity cap on live direct (issued) leases holds across replicas: two lease
 * managers sharing one state store, each as its own replica, issuing at once for one
 * identity against the real MariaDB, never make more live accounts than the cap. A refusal
 * leaves no account, and says when a slot frees up.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { LeaseManager } from '../../../src/credentials/leases.ts';
import { openMariadbAccounts } from '../../../src/credentials/mariadb-accounts.ts';
import { isMeshgateError } from '../../../src/errors/index.ts';
import type { Identity } from '../../../src/identity/types.ts';
import { silentLogger } from '../../../src/log.ts';
import { openEmbeddedStore } from '../../../src/store/index.ts';
import type { StateStore } from '../../../src/store/types.ts';
import { LimitExceededError } from '../../../src/throttle/index.ts';
import { makeTempDir } from '../../helpers/certs.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { existingAccounts, MARIADB } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

const MINUTE = 60_000;
const CAP = 2;
const run = randomBytes(3).toString('hex');
const identity = (sa: string): Identity => ({
  spiffeId: `spiffe://test.local/ns/cap-${run}/sa/${sa}`,
  trustDomain: 'test.local',
  namespace: `cap-${run}`,
  serviceAccount: sa,
  principal: `test.local/ns/cap-${run}/sa/${sa}`,
  authMethod: 'mtls',
  certificate: { serialNumber: '', notBefore: '', notAfter: '', fingerprint256: '' },
});

describe('the live direct-credential cap across replicas', { skip: missing }, () => {
  const role = `mgt_cap_${run}`;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  const stores: StateStore[] = [];
  const managers: LeaseManager[] = [];
  const accounts = openMariadbAccounts({ host: MARIADB.host, port: MARIADB.port, user: 'root', password: '' });

  before(async () => {
    const admin = await mysql.createConnection({ host: MARIADB.host, port: MARIADB.port, user: 'root' });
    await admin.query(`CREATE ROLE \`${role}\``);
    await admin.end();
    tmp = await makeTempDir('meshgate-direct-cap-');
    for (const owner of ['replica-a', 'replica-b']) {
      const store = await openEmbeddedStore(tmp.dir, { owner });
      stores.push(store);
      managers.push(
        new LeaseManager({
          store,
          accounts,
          owner,
          timings: { sessionTtlMs: 10 * MINUTE, sessionMaxTtlMs: 60 * MINUTE, issuedTtlMs: 5 * MINUTE, issuedMaxTtlMs: 15 * MINUTE },
          issuedMaxLive: CAP,
          log: silentLogger,
        }),
      );
    }
  });
  after(async () => {
    let left: string[] = ['(not checked)'];
    await cleanup(
      async () => {
        const store = stores[0];
        if (store === undefined) return;
        const all = await store.listLeases();
        for (const lease of all) await accounts.dropAccount(lease);
        left = await existingAccounts(all.map((l) => l.username));
      },
      async () => {
        const admin = await mysql.createConnection({ host: MARIADB.host, port: MARIADB.port, user: 'root' });
        await admin.query(`DROP ROLE IF EXISTS \`${role}\``);
        await admin.end();
      },
      () => accounts.close(),
      ...stores.map((store) => () => store.close()),
      () => tmp?.cleanup(),
    );
    assert.deepEqual(left, [], 'every account made here is dropped');
  });

  it('12 issues at once on two replicas: exactly the cap is created, the rest refused with MG_DIRECT_CREDS_LIMIT', async () => {
    const ci = identity('deploy');
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => managers[i % 2]!.issue(ci, role, null)));
    const created = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<LeaseManager['issue']>>>).value);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
    assert.equal(created.length, CAP, refused.map(String).join('\n'));
    for (const error of refused) {
      assert.ok(isMeshgateError(error) && error.code === 'MG_DIRECT_CREDS_LIMIT', String(error));
      assert.ok(error instanceof LimitExceededError && error.retryAfterSeconds >= 1 && error.retryAfterSeconds <= 5 * 60, String(error));
      assert.match(error.message, /holds 2 live direct credentials, the most upstream\.credentials\.issuedMaxLive allows per identity/);
    }
    const live = await stores[0]!.listLeases({ principal: ci.spiffeId, states: ['creating', 'active', 'revoking'] });
    assert.deepEqual(live.map((l) => l.id).sort(), created.map((c) => c.lease.id).sort());
    const all = await stores[0]!.listLeases({ principal: ci.spiffeId });
    assert.deepEqual(await existingAccounts(all.map((l) => l.username)), created.map((c) => c.username).sort(), 'a refusal leaves no account');
    // A refused record that got as far as the store is closed, with why.
    for (const lease of all.filter((l) => l.state === 'revoked')) assert.match(lease.revokeReason ?? '', /refused: over the live direct-credential limit/);
  });

  it('a sweep that runs while the cap recounts leaves the new lease alone', async () => {
    const store = stores[0]!;
    let justCreated = false;
    let swept = 0;
    // The sweep runs exactly between the insert of the record and the recount after it.
    const racing: StateStore = new Proxy(store, {
      get(target, property) {
        if (property === 'createLease') {
          return async (record: Parameters<StateStore['createLease']>[0]) => {
            await target.createLease(record);
            justCreated = true;
          };
        }
        if (property === 'listLeases') {
          return async (filter?: Parameters<StateStore['listLeases']>[0]) => {
            if (justCreated && filter?.purpose === 'issued') {
              justCreated = false;
              await manager.maintain();
              swept++;
            }
            return target.listLeases(filter);
          };
        }
        const value: unknown = Reflect.get(target, property);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const manager = new LeaseManager({
      store: racing,
      accounts,
      owner: 'replica-c',
      timings: { sessionTtlMs: 10 * MINUTE, sessionMaxTtlMs: 60 * MINUTE, issuedTtlMs: 5 * MINUTE, issuedMaxTtlMs: 15 * MINUTE },
      issuedMaxLive: CAP,
      log: silentLogger,
    });
    const issued = await manager.issue(identity('swept'), role, null);
    assert.equal(swept, 1);
    assert.equal((await store.getLease(issued.lease.id))?.state, 'active');
    assert.deepEqual(await existingAccounts([issued.username]), [issued.username]);
  });

  it('a revoked lease frees its slot; another identity has its own cap; session leases do not count', async () => {
    const ci = identity('deploy');
    const [oldest] = await stores[0]!.listLeases({ principal: ci.spiffeId, states: ['active'] });
    await managers[1]!.revoke({ leaseId: oldest!.id }, 'test: free a slot');
    const next = await managers[0]!.issue(ci, role, null);
    assert.equal(next.lease.purpose, 'issued');
    await assert.rejects(managers[1]!.issue(ci, role, null), /MG_DIRECT_CREDS_LIMIT|holds 2 live/);
    const other = identity('other');
    await managers[0]!.sessionCredential(other, role, null);
    await managers[0]!.sessionCredential(identity('other2'), role, null);
    for (let i = 0; i < CAP; i++) await managers[i % 2]!.issue(other, role, null);
    await assert.rejects(managers[0]!.issue(other, role, null), (e: Error & { code?: string }) => e.code === 'MG_DIRECT_CREDS_LIMIT');
  });
});
