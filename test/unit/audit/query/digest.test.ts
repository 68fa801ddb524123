/**
 * The digest: statements grouped by fingerprint and Firestore calls by method and path
 * pattern, with count, failures, total and p99 time, rows and identities; read from an
 * in-memory event source (the interface a PostgreSQL source will implement too).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { digestEvents, MAX_DIGESTS } from '../../../../src/audit/query/digest.ts';
import { pathPattern } from '../../../../src/audit/query/digest-key.ts';
import { compileFilter, type TimeWindow } from '../../../../src/audit/query/filter.ts';
import { QuantileSketch } from '../../../../src/audit/query/sketch.ts';
import type { AuditEventSource, SourcedEvent } from '../../../../src/audit/query/source.ts';
import { IDENTITY, statementEvent } from '../helpers.ts';

/** Events held in memory, served in batches of three. */
function memorySource(events: readonly object[]): AuditEventSource {
  return {
    name: 'memory',
    async *events(_window: TimeWindow) {
      for (let i = 0; i < events.length; i += 3) yield events.slice(i, i + 3).map((event, k): SourcedEvent => ({ event: event as Record<string, unknown>, where: `memory:${i + k + 1}` }));
    },
    notes: () => [],
  };
}

const ANALYTICS = { ...IDENTITY, spiffeId: 'spiffe://example.org/ns/data/sa/analytics', principal: 'example.org/ns/data/sa/analytics', namespace: 'data' };
const everything = compileFilter({}, 0);

describe('audit digest', () => {
  it('groups statements that differ in literals; counts, sums and names who ran them; longest total first', async () => {
    const events = [
      statementEvent(1, { statement: 'SELECT * FROM orders WHERE id = 1', durationUs: 1000, rowsReturned: 1 }),
      statementEvent(2, { statement: "select *  from orders where id = 22 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/", durationUs: 3000, rowsReturned: 2 }),
      statementEvent(3, { statement: 'SELECT * FROM orders WHERE id = 3', durationUs: 2000, rowsReturned: 0, identity: ANALYTICS, outcome: 'failed' }),
      statementEvent(4, { statement: 'UPDATE orders SET n = 5 WHERE id IN (1, 2)', durationUs: 10_000, rowsReturned: 0, rowsAffected: 2 }),
      statementEvent(5, { statement: null, command: 'init_db', verb: null, durationUs: 10 }),
      { type: 'connection', time: '2025-01-01T00:00:00.000Z', engine: 'mysql', identity: IDENTITY },
    ];
    const rows = await digestEvents(memorySource(events), everything);
    assert.deepEqual(rows.map((r) => [r.fingerprint, r.count, r.totalUs]), [
      ['update orders set n = ? where id in (?+)', 1, 10_000],
      ['select * from orders where id = ?', 3, 6000],
      ['(init_db)', 1, 10],
    ]);
    const select = rows[1]!;
    assert.equal(select.failed, 1);
    assert.equal(select.rowsReturned, 3);
    assert.equal(select.maxUs, 3000);
    assert.equal(select.p99Us, 3000);
    assert.deepEqual(select.identities, [
      { identity: IDENTITY.principal, count: 2 },
      { identity: ANALYTICS.principal, count: 1 },
    ]);
    assert.equal(select.firstSeen, events[0]!.time);
    assert.equal(select.lastSeen, events[2]!.time);
    assert.equal(rows[0]!.rowsAffected, 2);
    assert.match(select.id, /^[0-9a-f]{16}$/);
    assert.equal(new Set(rows.map((r) => r.id)).size, 3);
  });

  it('groups Firestore calls by method and the pattern of their paths', async () => {
    const rpc = (paths: string[], method = 'GetDocument', documents = 1) => ({
      type: 'rpc',
      time: '2025-01-01T00:00:00.000Z',
      engine: 'firestore',
      identity: ANALYTICS,
      method: `google.firestore.v1.Firestore/${method}`,
      paths,
      durationUs: 500,
      documents,
      outcome: 'completed',
    });
    const rows = await digestEvents(
      memorySource([rpc(['users/alice/orders/o1']), rpc(['users/bob/orders/o9']), rpc(['orders/b', 'users/x'], 'Commit', 2), rpc(['users/y', 'orders/c'], 'Commit', 2), rpc(['orders (collection)'], 'RunQuery', 7)]),
      everything,
    );
    assert.deepEqual(rows.map((r) => [r.engine, r.fingerprint, r.count, r.documents]), [
      ['firestore', 'Commit orders/*, users/*', 2, 4],
      ['firestore', 'GetDocument users/*/orders/*', 2, 2],
      ['firestore', 'RunQuery orders (collection)', 1, 7],
    ]);
  });

  it('path patterns fold document ids and keep collection ids, groups and subtrees', () => {
    assert.equal(pathPattern('users/alice'), 'users/*');
    assert.equal(pathPattern('users/alice/orders (collection)'), 'users/*/orders (collection)');
    assert.equal(pathPattern('users/alice/** (subtree)'), 'users/*/** (subtree)');
    assert.equal(pathPattern('users/alice/**/items (collection-group)'), 'users/*/**/items (collection-group)');
    assert.equal(pathPattern('**/items (collection-group)'), '**/items (collection-group)');
    assert.equal(pathPattern(''), '(database)');
  });

  it('digests only what the filter lets through', async () => {
    const events = [statementEvent(1, { statement: 'SELECT 1' }), statementEvent(2, { statement: 'SELECT 2', identity: ANALYTICS }), statementEvent(3, { statement: 'DELETE FROM t', verb: 'DELETE', identity: ANALYTICS })];
    const rows = await digestEvents(memorySource(events), compileFilter({ identity: ['*/sa/analytics'], verb: ['select'] }, 0));
    assert.deepEqual(rows.map((r) => [r.fingerprint, r.count]), [['select ?', 1]]);
  });

  it(`keeps at most ${MAX_DIGESTS} fingerprints; the rest are counted in one row`, async () => {
    const events = Array.from({ length: MAX_DIGESTS + 5 }, (_, i) => ({ type: 'statement', engine: 'mysql', statement: `SELECT c${i} FROM t`, durationUs: 1 }));
    const rows = await digestEvents(memorySource(events), everything);
    assert.equal(rows.length, MAX_DIGESTS + 1);
    const other = rows.find((r) => r.fingerprint.startsWith('(other'));
    assert.equal(other?.count, 5);
  });
});

describe('QuantileSketch', () => {
  it('a quantile is within 1 % of the exact one (nearest rank: the ceil(q·n)-th smallest)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3_600_000_000 }), { minLength: 1, maxLength: 2000 }), fc.constantFrom(0.5, 0.9, 0.99, 1), (values, q) => {
        const sketch = new QuantileSketch();
        for (const v of values) sketch.add(v);
        const sorted = [...values].sort((a, b) => a - b);
        const exact = sorted[Math.max(1, Math.ceil(Math.round(q * sorted.length * 1e6) / 1e6)) - 1]!;
        const got = sketch.quantile(q)!;
        assert.ok(Math.abs(got - exact) <= exact * 0.01 + 1e-9, `q${q}: ${got} vs ${exact}`);
      }),
      { numRuns: 300 },
    );
  });

  it('empty: null; one value: that value; nonsense is not counted', () => {
    const sketch = new QuantileSketch();
    assert.equal(sketch.quantile(0.99), null);
    sketch.add(Number.NaN);
    sketch.add(-1);
    assert.equal(sketch.count, 0);
    sketch.add(1234);
    assert.equal(sketch.quantile(0.99), 1234);
  });
});
