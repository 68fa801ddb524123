/**
 * What the lease manager makes of MariaDB refusing a session lease's password: it looks at
 * the account as MariaDB has it now and tells a takeover (password or TLS requirement changed
 * behind its back: revoke at once, killing its connections) from what is no takeover (the
 * lease ended by meshgate's own hand here or on another replica, the account dropped by an
 * administrator, meshgate's own upstream certificate renewed with another subject).
 * A fake MariaDB account manager; the embedded store in a temp dir.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { nativePasswordHash } from '../../../src/credentials/lease-refusal.ts';
import { LeaseManager } from '../../../src/credentials/leases.ts';
import type { AccountRequirement, AccountState, ManagedAccount, MariadbAccounts } from '../../../src/credentials/types.ts';
import { silentLogger } from '../../../src/log.ts';
import { openEmbeddedStore } from '../../../src/store/index.ts';
import type { StateStore } from '../../../src/store/types.ts';
import { makeTempDir } from '../../helpers/certs.ts';
import type { Identity } from '../../../src/identity/index.ts';

const MINUTE = 60_000;
const ORDERS: Identity = {
  spiffeId: 'spiffe://test.local/ns/shop/sa/orders',
  trustDomain: 'test.local',
  namespace: 'shop',
  serviceAccount: 'orders',
  principal: 'test.local/ns/shop/sa/orders',
  authMethod: 'mtls',
  certificate: { serialNumber: '', notBefore: '', notAfter: '', fingerprint256: '' },
};
const OLD_CERT: AccountRequirement = { subject: '/O=meshgate/CN=meshgate-upstream', issuer: '/O=meshgate/CN=meshgate CA test.local' };
const NEW_CERT: AccountRequirement = { subject: '/O=meshgate/CN=meshgate-upstream-2', issuer: OLD_CERT.issuer };

interface FakeAccount {
  authenticationString: string;
  plugin: string;
  requirement: AccountRequirement | null;
  connections: number;
}

/** MariaDB as far as the lease manager sees it; tests change accounts behind its back. */
function fakeMariadb() {
  const accounts = new Map<string, FakeAccount>();
  const drops: { username: string; killSessions: boolean }[] = [];
  const fake: MariadbAccounts = {
    async createAccount(account, password, _role, requirement) {
      accounts.set(account.username, { authenticationString: nativePasswordHash(password), plugin: 'mysql_native_password', requirement: requirement ?? null, connections: 0 });
    },
    async dropAccount(account, options) {
      drops.push({ username: account.username, killSessions: options?.killSessions === true });
      return accounts.delete(account.username) ? 'dropped' : 'absent';
    },
    async inspectAccount(account: ManagedAccount): Promise<AccountState | null> {
      const found = accounts.get(account.username);
      if (found === undefined) return null;
      return {
        plugin: found.plugin,
        authenticationString: found.authenticationString,
        requirement: found.requirement,
        connections: found.connections,
      };
    },
    roleExists: async () => true,
    listManagedAccounts: async () => [...accounts.keys()].map((username) => ({ username, userHost: '%' })),
    changeAdminPassword: async () => undefined,
    close: async () => undefined,
  };
  return { fake, accounts, drops };
}

describe('a refused lease password', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let store: StateStore;
  let mariadb: ReturnType<typeof fakeMariadb>;
  let manager: LeaseManager;
  let certificate: AccountRequirement | null;
  const ended: string[] = [];

  before(async () => {
    tmp = await makeTempDir('meshgate-lease-refusal-');
  });
  after(async () => {
    await store?.close();
    await tmp?.cleanup();
  });
  beforeEach(async () => {
    await store?.close();
    store = await openEmbeddedStore(`${tmp.dir}/${Math.random().toString(36).slice(2)}`, { owner: 'test' });
    mariadb = fakeMariadb();
    certificate = OLD_CERT;
    ended.length = 0;
    manager = new LeaseManager({
      store,
      accounts: mariadb.fake,
      owner: 'test',
      timings: { sessionTtlMs: 10 * MINUTE, sessionMaxTtlMs: 60 * MINUTE, issuedTtlMs: 5 * MINUTE, issuedMaxTtlMs: 15 * MINUTE },
      log: silentLogger,
      requirement: () => certificate,
      onLeaseEnded: (lease) => ended.push(lease.id),
    });
  });

  it('session accounts are created requiring meshgate’s certificate; issued (direct) ones are not', async () => {
    const session = await manager.sessionCredential(ORDERS, 'shop_rw', null);
    assert.deepEqual(mariadb.accounts.get(session.username)?.requirement, OLD_CERT);
    const issued = await manager.issue(ORDERS, 'shop_rw', null);
    assert.equal(mariadb.accounts.get(issued.username)?.requirement, null);
  });

  it('a password changed behind meshgate’s back: compromised, revoked at once with its connections killed', async () => {
    const credential = await manager.sessionCredential(ORDERS, 'shop_rw', null);
    const account = mariadb.accounts.get(credential.username)!;
    account.authenticationString = nativePasswordHash('hijacked');
    account.connections = 2;
    const verdict = await manager.refused(credential.lease.id);
    assert.equal(verdict.kind, 'compromised');
    assert.ok(verdict.kind === 'compromised');
    assert.match(verdict.reason, /password was changed outside meshgate/);
    assert.equal(verdict.connectionsKilled, 2);
    assert.match(verdict.action, /account dropped, 2 connections killed/);
    assert.deepEqual(mariadb.drops, [{ username: credential.username, killSessions: true }]);
    const stored = await store.getLease(credential.lease.id);
    assert.equal(stored?.state, 'revoked');
    assert.match(stored?.revokeReason ?? '', /^compromised: /);
    assert.deepEqual(ended, [credential.lease.id], 'the pool hears that the lease ended');
    const next = await manager.sessionCredential(ORDERS, 'shop_rw', null);
    assert.notEqual(next.lease.id, credential.lease.id, 'the next session gets a new lease');
  });

  it('a compromised lease whose revocation fails is still reported, with what is left to do', async () => {
    const credential = await manager.sessionCredential(ORDERS, 'shop_rw', null);
    mariadb.accounts.get(credential.username)!.authenticationString = nativePasswordHash('hijacked');
    mariadb.fake.dropAccount = async () => {
      throw new Error('MariaDB went away');
    };
    const verdict = await manager.refused(credential.lease.id);
    assert.ok(verdict.kind === 'compromised', verdict.kind);
    assert.match(verdict.action, new RegExp(`revoking failed .*meshgate creds revoke --lease ${credential.lease.id}`));
  });

  it('a TLS requirement changed behind meshgate’s back (REQUIRE NONE): compromised too', async () => {
    const credential = await manager.sessionCredential(ORDERS, 'shop_rw', null);
    mariadb.accounts.get(credential.username)!.requirement = null;
    const verdict = await manager.refused(credential.lease.id);
    assert.ok(verdict.kind === 'compromised', verdict.kind);
    assert.match(verdict.reason, /TLS requirement was changed outside meshgate/);
  });

  it('a lease meshgate ended elsewhere (another replica, creds revoke): no compromise, nothing dropped here', async () => {
    const credential = await manager.sessionCredential(ORDERS, 'shop_rw', null);
    await store.transitionLease(credential.lease.id, ['active'], 'revoked', { revokedAt: Date.now(), revokeReason: 'test: elsewhere' });
    mariadb.accounts.delete(credential.username);
    const verdict = await manager.refused(credential.lease.id);
    assert.equal(verdict.kind, 'ended');
    assert.deepEqual(mariadb.drops, []);
    assert.equal((await store.getLease(credential.lease.id))?.revokeReason, 'test: elsewhere');
  });

  it('a lease this manager no longer hands out: ended', async () => {
    const verdict = await manager.refused('lease_unknown');
    assert.equal(verdict.kind, 'ended');
  });

  it('an account dropped outside meshgate: the lease is closed on record, no connection killed, no compromise', async () => {
    const credential = await manager.sessionCredential(ORDERS, 'shop_rw', null);
    mariadb.accounts.delete(credential.username);
    const verdict = await manager.refused(credential.lease.id);
    assert.equal(verdict.kind, 'dropped-elsewhere');
    const stored = await store.getLease(credential.lease.id);
    assert.equal(stored?.state, 'revoked');
    assert.match(stored?.revokeReason ?? '', /dropped outside meshgate/);
    assert.deepEqual(mariadb.drops.map((d) => d.killSessions), [false]);
  });

  it('meshgate’s own certificate renewed with another subject: the lease is retired quietly, and new leases require the new subject', async () => {
    const credential = await manager.sessionCredential(ORDERS, 'shop_rw', null);
    certificate = NEW_CERT;
    const verdict = await manager.refused(credential.lease.id);
    assert.equal(verdict.kind, 'certificate-changed');
    assert.deepEqual(mariadb.drops.map((d) => d.killSessions), [false]);
    const next = await manager.sessionCredential(ORDERS, 'shop_rw', null);
    assert.deepEqual(mariadb.accounts.get(next.username)?.requirement, NEW_CERT);
  });

  it('a new subject before any refusal: the next session already gets a lease that requires it', async () => {
    const credential = await manager.sessionCredential(ORDERS, 'shop_rw', null);
    certificate = NEW_CERT;
    const next = await manager.sessionCredential(ORDERS, 'shop_rw', null);
    assert.notEqual(next.lease.id, credential.lease.id);
    assert.deepEqual(mariadb.accounts.get(next.username)?.requirement, NEW_CERT);
    for (let i = 0; i < 200 && (await store.getLease(credential.lease.id))?.state !== 'revoked'; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal((await store.getLease(credential.lease.id))?.state, 'revoked', 'the old lease is retired, its open sessions left alone');
    assert.deepEqual(mariadb.drops.map((d) => d.killSessions), [false]);
  });

  it('an account as meshgate made it, refused all the same: not called a compromise, the lease retired', async () => {
    const credential = await manager.sessionCredential(ORDERS, 'shop_rw', null);
    const verdict = await manager.refused(credential.lease.id);
    assert.equal(verdict.kind, 'unexplained');
    assert.equal((await store.getLease(credential.lease.id))?.state, 'revoked');
  });
});

describe('nativePasswordHash', () => {
  it('is what MariaDB stores for mysql_native_password', () => {
    // SELECT PASSWORD('pw') on MariaDB 10.11.
    assert.equal(nativePasswordHash('pw'), '*D821809F681A40A6E379B50D0463EFAE20BDD122');
  });
});
