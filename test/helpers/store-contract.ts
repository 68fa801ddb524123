/**
 * The behaviour every StateStore must share, run against the embedded store and PostgreSQL
 * alike: code above the store (lease manager, reaper, CLI) must not care which one it has.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import { isMeshgateError, type ErrorCode } from '../../src/errors/index.ts';
import type { LeaseRecord, StateStore } from '../../src/store/types.ts';

export interface StoreOpenOptions {
  readonly owner?: string;
  readonly now?: () => number;
}

/** One isolated backing (a directory, a schema); every open() sees the same data. */
export interface StoreFixture {
  open(options?: StoreOpenOptions): Promise<StateStore>;
}

/** Far past 2^31, so a store that kept epoch ms in a 32-bit column would fail. */
export const T0 = 1_700_000_000_000;
export const MINUTE_MS = 60_000;

export function newLeaseId(): string {
  return `lease_${randomBytes(18).toString('base64url')}`;
}

export function makeLease(overrides: Partial<LeaseRecord> = {}): LeaseRecord {
  return {
    id: newLeaseId(),
    purpose: 'session',
    principal: 'spiffe://example.org/ns/shop/sa/orders',
    role: 'orders_rw',
    database: null,
    username: `mg_${randomBytes(6).toString('hex')}`,
    userHost: '%',
    state: 'active',
    createdAt: T0,
    expiresAt: T0 + 15 * MINUTE_MS,
    maxExpiresAt: T0 + 60 * MINUTE_MS,
    updatedAt: T0,
    revokedAt: null,
    revokeReason: null,
    owner: 'replica-a',
    ...overrides,
  };
}

export function isStoreError(code: ErrorCode, message?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(isMeshgateError(error), String(error));
    assert.equal(error.code, code, error.message);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  };
}

const ids = (leases: readonly LeaseRecord[]): string[] => leases.map((lease) => lease.id);

/** Registers the contract tests; `fresh` gives each test its own empty backing. */
export function describeStoreContract(name: string, fresh: () => Promise<StoreFixture>, options: { readonly skip?: string | false } = {}): void {
  describe(`${name}: StateStore contract`, { skip: options.skip ?? false }, () => {
    const opened: StateStore[] = [];
    let clock = T0;
    const now = (): number => clock;
    const open = async (fixture: StoreFixture, options: StoreOpenOptions = {}): Promise<StateStore> => {
      const store = await fixture.open({ now, owner: 'replica-test', ...options });
      opened.push(store);
      return store;
    };
    const freshStore = async (options?: StoreOpenOptions): Promise<StateStore> => open(await fresh(), options);

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((store) => store.close()));
      clock = T0;
    });

    test('creates a lease and reads every field back unchanged', async () => {
      const store = await freshStore();
      const full = makeLease({ purpose: 'issued', database: 'shop', revokeReason: 'why not', revokedAt: T0 + 5, maxExpiresAt: 8_640_000_000_000 });
      const bare = makeLease();
      await store.createLease(full);
      await store.createLease(bare);
      assert.deepEqual(await store.getLease(full.id), full);
      assert.deepEqual(await store.getLease(bare.id), bare);
      assert.equal(await store.getLease(newLeaseId()), null);
    });

    test('refuses a second lease with the same id, keeping the first', async () => {
      const store = await freshStore();
      const lease = makeLease();
      await store.createLease(lease);
      await assert.rejects(store.createLease({ ...lease, role: 'other' }), isStoreError('MG_STORE_CONFLICT', new RegExp(lease.id)));
      assert.deepEqual(await store.getLease(lease.id), lease);
      assert.equal((await store.listLeases()).length, 1);
    });

    test('lists leases by createdAt ascending, ties broken by id', async () => {
      const store = await freshStore();
      const late = makeLease({ createdAt: T0 + 3 });
      const early = makeLease({ createdAt: T0 + 1 });
      const tieA = makeLease({ id: 'lease_AAAAAAAAAAAAAAAAAAAAAAAA', createdAt: T0 + 2 });
      const tieB = makeLease({ id: 'lease_-aaaaaaaaaaaaaaaaaaaaaaa', createdAt: T0 + 2 });
      const tieC = makeLease({ id: 'lease_aaaaaaaaaaaaaaaaaaaaaaaa', createdAt: T0 + 2 });
      for (const lease of [late, tieC, early, tieA, tieB]) await store.createLease(lease);
      assert.deepEqual(ids(await store.listLeases()), [early.id, tieB.id, tieA.id, tieC.id, late.id]);
      assert.deepEqual(ids(await store.listLeases({})), [early.id, tieB.id, tieA.id, tieC.id, late.id]);
    });

    test('filters by every field, alone and combined', async () => {
      const store = await freshStore();
      const a = makeLease({ createdAt: T0 + 1, state: 'active', principal: 'p1', role: 'r1', purpose: 'session', expiresAt: T0 + 100, updatedAt: T0 + 10 });
      const b = makeLease({ createdAt: T0 + 2, state: 'revoking', principal: 'p2', role: 'r1', purpose: 'issued', expiresAt: T0 + 200, updatedAt: T0 + 20 });
      const c = makeLease({ createdAt: T0 + 3, state: 'revoked', principal: 'p1', role: 'r2', purpose: 'issued', expiresAt: T0 + 300, updatedAt: T0 + 30 });
      const d = makeLease({ createdAt: T0 + 4, state: 'creating', principal: 'p2', role: 'r2', purpose: 'session', expiresAt: T0 + 400, updatedAt: T0 + 40 });
      for (const lease of [a, b, c, d]) await store.createLease(lease);
      const list = async (filter: Parameters<StateStore['listLeases']>[0]): Promise<string[]> => ids(await store.listLeases(filter));

      assert.deepEqual(await list({ states: ['active'] }), [a.id]);
      assert.deepEqual(await list({ states: ['creating', 'revoking'] }), [b.id, d.id]);
      assert.deepEqual(await list({ states: [] }), [], 'an empty state list matches nothing');
      assert.deepEqual(await list({ principal: 'p1' }), [a.id, c.id]);
      assert.deepEqual(await list({ principal: 'nobody' }), []);
      assert.deepEqual(await list({ role: 'r2' }), [c.id, d.id]);
      assert.deepEqual(await list({ purpose: 'issued' }), [b.id, c.id]);
      assert.deepEqual(await list({ purpose: 'session' }), [a.id, d.id]);
      assert.deepEqual(await list({ expiresBefore: T0 + 300 }), [a.id, b.id], 'expiresBefore is strict');
      assert.deepEqual(await list({ updatedBefore: T0 + 21 }), [a.id, b.id]);
      assert.deepEqual(await list({ updatedBefore: T0 + 10 }), [], 'updatedBefore is strict');
      assert.deepEqual(await list({ states: ['active', 'revoked', 'creating'], principal: 'p1', role: 'r2' }), [c.id]);
      assert.deepEqual(await list({ purpose: 'session', expiresBefore: T0 + 1000, updatedBefore: T0 + 40 }), [a.id]);
    });

    test('transitions with compare-and-set, stamping updatedAt and owner', async () => {
      const store = await freshStore({ owner: 'replica-b' });
      const lease = makeLease({ state: 'creating' });
      await store.createLease(lease);
      clock = T0 + 1_000;
      const active = await store.transitionLease(lease.id, ['creating'], 'active', { expiresAt: T0 + 20 * MINUTE_MS });
      assert.deepEqual(active, { ...lease, state: 'active', expiresAt: T0 + 20 * MINUTE_MS, updatedAt: T0 + 1_000, owner: 'replica-b' });
      assert.deepEqual(await store.getLease(lease.id), active);

      clock = T0 + 2_000;
      const revoked = await store.transitionLease(lease.id, ['active', 'revoking'], 'revoked', { revokedAt: T0 + 1_500, revokeReason: 'expired' });
      assert.equal(revoked?.state, 'revoked');
      assert.equal(revoked?.revokedAt, T0 + 1_500);
      assert.equal(revoked?.revokeReason, 'expired');
      assert.equal(revoked?.updatedAt, T0 + 2_000);
      assert.equal(revoked?.expiresAt, T0 + 20 * MINUTE_MS, 'fields outside the patch are kept');
    });

    test('returns null and changes nothing when the state, the id or the from-list does not match', async () => {
      const store = await freshStore();
      const lease = makeLease({ state: 'revoked', revokedAt: T0 });
      await store.createLease(lease);
      clock = T0 + 1;
      assert.equal(await store.transitionLease(lease.id, ['active', 'creating'], 'revoking'), null);
      assert.equal(await store.transitionLease(lease.id, [], 'revoking'), null);
      assert.equal(await store.transitionLease(newLeaseId(), ['revoked'], 'active'), null);
      assert.deepEqual(await store.getLease(lease.id), lease);
    });

    test('applies only the patch keys that are set, including explicit updatedAt, owner and nulls', async () => {
      const store = await freshStore();
      const lease = makeLease({ state: 'revoking', revokedAt: T0 + 7, revokeReason: 'admin' });
      await store.createLease(lease);
      const patched = await store.transitionLease(lease.id, ['revoking'], 'active', {
        revokedAt: null,
        revokeReason: undefined,
        updatedAt: T0 + 42,
        owner: 'replica-z',
        expiresAt: undefined,
      });
      assert.deepEqual(patched, { ...lease, state: 'active', revokedAt: null, updatedAt: T0 + 42, owner: 'replica-z' });
    });

    test('honours updatedBefore, so only a stale claim can be taken over', async () => {
      const store = await freshStore();
      const lease = makeLease({ state: 'revoking', updatedAt: T0 + 100 });
      await store.createLease(lease);
      clock = T0 + 500;
      assert.equal(await store.transitionLease(lease.id, ['revoking'], 'revoking', {}, { updatedBefore: T0 + 100 }), null, 'strict');
      assert.equal(await store.transitionLease(lease.id, ['revoking'], 'revoking', {}, { updatedBefore: T0 + 50 }), null);
      assert.deepEqual(await store.getLease(lease.id), lease);
      const claimed = await store.transitionLease(lease.id, ['revoking'], 'revoking', {}, { updatedBefore: T0 + 101 });
      assert.equal(claimed?.updatedAt, T0 + 500);
      assert.equal(await store.transitionLease(lease.id, ['revoking'], 'revoking', {}, { updatedBefore: T0 + 101 }), null, 'the fresh claim is not stale');
    });

    test('lets exactly one of 20 parallel transitions win', async () => {
      const store = await freshStore();
      const lease = makeLease();
      await store.createLease(lease);
      const results = await Promise.all(Array.from({ length: 20 }, () => store.transitionLease(lease.id, ['active'], 'revoking')));
      assert.equal(results.filter((r) => r !== null).length, 1);
      assert.equal((await store.getLease(lease.id))?.state, 'revoking');
    });

    test('lets exactly one of two store instances on the same data win a race', async () => {
      const fixture = await fresh();
      const one = await open(fixture, { owner: 'replica-1' });
      const two = await open(fixture, { owner: 'replica-2' });
      const leases = Array.from({ length: 5 }, (_, i) => makeLease({ createdAt: T0 + i }));
      for (const lease of leases) await one.createLease(lease);
      for (const lease of leases) {
        const race = await Promise.all(
          Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? one : two).transitionLease(lease.id, ['active'], 'revoking')),
        );
        const winners = race.filter((r) => r !== null);
        assert.equal(winners.length, 1, `lease ${lease.id}`);
        assert.deepEqual(await two.getLease(lease.id), winners[0]);
      }
      assert.deepEqual(ids(await one.listLeases({ states: ['revoking'] })), ids(leases));
    });

    test('prunes only revoked leases revoked before the cut-off', async () => {
      const store = await freshStore();
      const old = makeLease({ createdAt: T0 + 1, state: 'revoked', revokedAt: T0 + 10 });
      const atCutoff = makeLease({ createdAt: T0 + 2, state: 'revoked', revokedAt: T0 + 20 });
      const recent = makeLease({ createdAt: T0 + 3, state: 'revoked', revokedAt: T0 + 30 });
      const noRevokedAt = makeLease({ createdAt: T0 + 4, state: 'revoked', revokedAt: null, updatedAt: T0 + 5 });
      const stillActive = makeLease({ createdAt: T0 + 5, state: 'active', updatedAt: T0 });
      const revoking = makeLease({ createdAt: T0 + 6, state: 'revoking', revokedAt: T0 + 1 });
      for (const lease of [old, atCutoff, recent, noRevokedAt, stillActive, revoking]) await store.createLease(lease);
      assert.equal(await store.pruneRevoked(T0 + 20), 2);
      assert.deepEqual(ids(await store.listLeases()), [atCutoff.id, recent.id, stillActive.id, revoking.id]);
      assert.equal(await store.pruneRevoked(T0 + 20), 0);
      assert.equal(await store.pruneRevoked(T0 + 1_000), 2);
      assert.deepEqual(ids(await store.listLeases()), [stillActive.id, revoking.id]);
    });

    test('keeps every lease across close and reopen', async () => {
      const fixture = await fresh();
      const first = await open(fixture);
      const leases = Array.from({ length: 3 }, (_, i) => makeLease({ createdAt: T0 + i }));
      for (const lease of leases) await first.createLease(lease);
      clock = T0 + 9;
      const moved = await first.transitionLease(leases[1]!.id, ['active'], 'revoking', { revokeReason: 'rotated' });
      await first.close();
      const second = await open(fixture);
      assert.deepEqual(await second.listLeases(), [leases[0], moved, leases[2]]);
    });

    test('reports what it is', async () => {
      const store = await freshStore();
      assert.ok(store.kind === 'embedded' || store.kind === 'postgres');
      assert.ok(store.location.length > 0);
    });
  });
}
