/**
 * The filters of `audit query` over events as a log holds them: each filter, globs, trace
 * prefixes and traceparents, Firestore path patterns as policy writes them, verbs of
 * multi-statement texts and Firestore methods, the time window, and what a bad value says.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileFilter, compileGlob, type QueryFilterInput } from '../../../../src/audit/query/filter.ts';
import { parseTimeBound } from '../../../../src/audit/query/time.ts';
import { digestKeyOf } from '../../../../src/audit/query/digest-key.ts';
import { isMeshgateError } from '../../../../src/errors/index.ts';
import { IDENTITY, statementEvent } from '../helpers.ts';

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0);
const ANALYTICS = { ...IDENTITY, spiffeId: 'spiffe://example.org/ns/data/sa/analytics', principal: 'example.org/ns/data/sa/analytics', namespace: 'data', serviceAccount: 'analytics' };

const rpc = (paths: string[], overrides: Record<string, unknown> = {}) => ({
  type: 'rpc',
  time: '2025-06-01T11:00:00.000Z',
  sessionId: 'f1',
  engine: 'firestore',
  peer: { address: '127.0.0.1', port: 1 },
  identity: ANALYTICS,
  xfcc: null,
  method: 'google.firestore.v1.Firestore/GetDocument',
  operation: 'read',
  paths,
  decision: 'allow',
  rule: 'fs-read',
  reason: 'allowed',
  traceId: 'c'.repeat(32),
  status: 0,
  documents: 1,
  durationUs: 800,
  outcome: 'completed',
  error: null,
  ...overrides,
});

const EVENTS: Record<string, Record<string, unknown>> = {
  select: { ...statementEvent(1, { time: '2025-06-01T10:00:00.000Z', traceId: '4bf92f3577b34da6a3ce929d0e0e4736' }) },
  multi: { ...statementEvent(2, { time: '2025-06-01T11:30:00.000Z', verb: 'SELECT', verbs: ['SELECT', 'DELETE'], statement: 'SELECT 1; DELETE FROM t', database: 'billing', rule: 'billing-rw', traceId: 'a'.repeat(32) }) },
  denied: { ...statementEvent(3, { time: '2025-06-01T11:59:00.000Z', identity: ANALYTICS, decision: 'deny', outcome: 'failed', rule: null, verb: 'DROP', statement: 'DROP TABLE t', traceId: 'b'.repeat(32) }) },
  login: { type: 'connection', time: '2025-06-01T09:00:00.000Z', sessionId: 'c1', engine: 'mysql', identity: IDENTITY, database: 'shop', decision: 'allow', rule: 'orders-read', reason: 'allowed' },
  document: rpc(['users/alice/orders/o1']),
  list: rpc(['orders (collection)'], { method: 'google.firestore.v1.Firestore/RunQuery', traceId: 'd'.repeat(32) }),
  group: rpc(['**/items (collection-group)'], { method: 'google.firestore.v1.Firestore/RunQuery', decision: 'deny', outcome: 'failed', traceId: 'e'.repeat(32) }),
  credential: { type: 'credential', time: '2025-06-01T08:00:00.000Z', engine: 'mysql', sessionId: 'cr', action: 'issue', outcome: 'refused', credential: 'direct', identity: null, principal: 'example.org/ns/ops/sa/backup', decision: 'deny', rule: null, database: 'shop' },
};

function matching(input: QueryFilterInput): string[] {
  const filter = compileFilter(input, NOW);
  return Object.entries(EVENTS).filter(([, event]) => filter.matches(event)).map(([name]) => name);
}

function usageError(input: QueryFilterInput, message: RegExp): void {
  assert.throws(() => compileFilter(input, NOW), (error: unknown) => isMeshgateError(error) && error.code === 'MG_USAGE' && message.test(error.message));
}

describe('audit query filters', () => {
  it('no filter: every event', () => assert.equal(matching({}).length, Object.keys(EVENTS).length));

  it('--identity: SPIFFE ID or principal, exact or glob; a credential owner counts', () => {
    assert.deepEqual(matching({ identity: ['spiffe://example.org/ns/shop/sa/orders'] }), ['select', 'multi', 'login']);
    assert.deepEqual(matching({ identity: ['example.org/ns/data/sa/analytics'] }), ['denied', 'document', 'list', 'group']);
    assert.deepEqual(matching({ identity: ['*/sa/orders'] }), ['select', 'multi', 'login']);
    assert.deepEqual(matching({ identity: ['*/ns/ops/*'] }), ['credential']);
    assert.deepEqual(matching({ identity: ['example.org/ns/shop/sa/order?'] }), ['select', 'multi', 'login']);
    assert.deepEqual(matching({ identity: ['ns/shop'] }), [], 'exact, not a substring');
    assert.deepEqual(matching({ identity: ['*/sa/orders', '*/sa/analytics'] }).length, 7);
  });

  it('--namespace', () => {
    assert.deepEqual(matching({ namespace: ['data'] }), ['denied', 'document', 'list', 'group']);
    assert.deepEqual(matching({ namespace: ['sh*'] }), ['select', 'multi', 'login']);
  });

  it('--trace: the id, a prefix of 8 or more, a traceparent', () => {
    assert.deepEqual(matching({ trace: ['4bf92f3577b34da6a3ce929d0e0e4736'] }), ['select']);
    assert.deepEqual(matching({ trace: ['4BF92F35'] }), ['select']);
    assert.deepEqual(matching({ trace: ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'] }), ['select']);
    assert.deepEqual(matching({ trace: ['aaaaaaaa', 'dddddddd'] }), ['multi', 'list']);
    usageError({ trace: ['4bf92f'] }, /not a trace id.*first 8 or more/);
    usageError({ trace: ['xyz12345'] }, /not a trace id/);
  });

  it('--database and --rule: globs over the field', () => {
    assert.deepEqual(matching({ database: ['shop'] }), ['select', 'denied', 'login', 'credential']);
    assert.deepEqual(matching({ database: ['bill*'] }), ['multi']);
    assert.deepEqual(matching({ rule: ['*-rw'] }), ['multi']);
    assert.deepEqual(matching({ rule: ['fs-read'] }), ['document', 'list', 'group']);
  });

  it('--collection: Firestore path patterns as policy writes them; a collection alone means its documents', () => {
    assert.deepEqual(matching({ collection: ['orders'] }), ['list']);
    assert.deepEqual(matching({ collection: ['orders/*'] }), ['list']);
    assert.deepEqual(matching({ collection: ['users/**'] }), ['document', 'group'], 'a collection group may reach beneath users');
    assert.deepEqual(matching({ collection: ['users/*/orders'] }), ['document']);
    assert.deepEqual(matching({ collection: ['**/orders/*'] }), ['document', 'list']);
    assert.deepEqual(matching({ collection: ['users/*/items/*'] }), ['group'], 'a collection group reaches every items collection');
    assert.deepEqual(matching({ collection: ['users'] }), [], 'documents of users, not of its subcollections');
    usageError({ collection: ['a//b'] }, /--collection "a\/\/b", read as its documents: .*empty segment/);
    usageError({ collection: ['or*ders/*'] }, /segment/);
  });

  it('--verb: any statement of a multi-statement text, or a Firestore method; any case', () => {
    assert.deepEqual(matching({ verb: ['delete'] }), ['multi']);
    assert.deepEqual(matching({ verb: ['SELECT'] }), ['select', 'multi']);
    assert.deepEqual(matching({ verb: ['runquery,drop'] }), ['denied', 'list', 'group']);
  });

  it('--decision, --engine, --type, --outcome: enumerations, checked', () => {
    assert.deepEqual(matching({ decision: ['deny'] }), ['denied', 'group', 'credential']);
    assert.deepEqual(matching({ engine: ['firestore'] }), ['document', 'list', 'group']);
    assert.deepEqual(matching({ type: ['connection', 'credential'] }), ['login', 'credential']);
    assert.deepEqual(matching({ type: ['connection,credential'] }), ['login', 'credential']);
    assert.deepEqual(matching({ outcome: ['refused'] }), ['credential']);
    assert.deepEqual(matching({ outcome: ['failed'] }), ['denied', 'group']);
    usageError({ decision: ['maybe'] }, /--decision "maybe" is not one of allow, deny/);
    usageError({ type: ['statement,end'] }, /--type "end" is not one of connection, statement, session_end/);
    usageError({ engine: ['postgres'] }, /--engine/);
    usageError({ outcome: ['ok'] }, /--outcome/);
    usageError({ identity: [' '] }, /empty value/);
  });

  it('filters combine: all must hold', () => {
    assert.deepEqual(matching({ identity: ['*/sa/analytics'], decision: ['deny'], engine: ['mysql'] }), ['denied']);
    assert.deepEqual(matching({ type: ['rpc'], collection: ['orders'], verb: ['GetDocument'] }), []);
  });

  it('--fingerprint: the events of one digest, by its id or a prefix', () => {
    const id = digestKeyOf(EVENTS['multi']!)!.id;
    assert.deepEqual(matching({ fingerprint: [id] }), ['multi']);
    assert.deepEqual(matching({ fingerprint: [id.slice(0, 6).toUpperCase()] }), ['multi']);
    usageError({ fingerprint: ['abc'] }, /not a digest id/);
  });

  it('--since (inclusive) and --until (exclusive), absolute or relative', () => {
    assert.deepEqual(matching({ since: '2025-06-01T11:00:00Z' }), ['multi', 'denied', 'document', 'list', 'group']);
    assert.deepEqual(matching({ until: '2025-06-01T11:00:00Z' }), ['select', 'login', 'credential']);
    assert.deepEqual(matching({ since: '30m' }), ['multi', 'denied']);
    assert.deepEqual(matching({ since: '2h', until: '1h' }), ['select']);
    assert.deepEqual(matching({ since: '2025-06-01T11:30:00+02:00', until: '2025-06-01T10:30:00.5Z' }), ['select']);
    usageError({ since: '1h', until: '2h' }, /--since \(2025-06-01T11:00:00\.000Z\) must be before --until \(2025-06-01T10:00:00\.000Z\)/);
    // An event whose time cannot be read is outside every window.
    assert.equal(compileFilter({ since: '1d' }, NOW).matches({ ...EVENTS['select'], time: 'yesterday' }), false);
  });

  it('events as edited files may hold them: a field of the wrong type matches nothing and throws nothing', () => {
    const odd = { type: 'statement', identity: 'root', traceId: 7, verbs: [1, null], paths: 'x', database: ['shop'], time: 5 } as Record<string, unknown>;
    const inputs: QueryFilterInput[] = [{ identity: ['*'] }, { namespace: ['*'] }, { trace: ['00000000'] }, { verb: ['SELECT'] }, { collection: ['**'] }, { database: ['*'] }, { since: '1d' }, { fingerprint: ['000000'] }];
    for (const input of inputs) assert.equal(compileFilter(input, NOW).matches(odd), false, JSON.stringify(input));
  });
});

describe('compileGlob', () => {
  it('* runs over any characters, ? one, the rest is itself, the whole value', () => {
    const glob = compileGlob('spiffe://*/ns/?hop/sa/*');
    assert.equal(glob('spiffe://example.org/ns/shop/sa/orders'), true);
    assert.equal(glob('spiffe://a/b/ns/chop/sa/x/y'), true);
    assert.equal(glob('spiffe://example.org/ns/shops/sa/orders'), false);
    assert.equal(compileGlob('a.b')('aXb'), false, 'a dot is a dot');
    assert.equal(compileGlob('*')(''), true);
    assert.equal(compileGlob('a*')('a'), true);
  });

  it('many stars stay linear', () => {
    const glob = compileGlob(`${'*a'.repeat(50)}*b`);
    const started = performance.now();
    assert.equal(glob('a'.repeat(100_000)), false);
    assert.ok(performance.now() - started < 2000);
  });
});

describe('parseTimeBound', () => {
  it('RFC 3339 with Z, an offset, fractions; a day from midnight UTC; a duration before now', () => {
    assert.equal(parseTimeBound('2025-06-01T12:00:00Z', '--since', NOW), NOW);
    assert.equal(parseTimeBound('2025-06-01t14:00:00.250+02:00', '--since', NOW), NOW + 250);
    assert.equal(parseTimeBound('2025-06-01 12:00:00z', '--since', NOW), NOW);
    assert.equal(parseTimeBound('2025-06-01', '--since', NOW), Date.UTC(2025, 5, 1));
    assert.equal(parseTimeBound('15m', '--since', NOW), NOW - 15 * 60_000);
    assert.equal(parseTimeBound(' 2h ', '--since', NOW), NOW - 2 * 3_600_000);
    assert.equal(parseTimeBound('7d', '--since', NOW), NOW - 7 * 86_400_000);
  });

  for (const bad of ['yesterday', '2025-02-30', '2025-13-01', '2025-06-01T24:00:00Z', '2025-06-01T12:00:00', '2025-06-01T12:00Z', '0m', '1w', '1h30m', '-5m', '', '2025-06-01T12:00:00+25:00']) {
    it(`refuses ${JSON.stringify(bad)} with MG_USAGE naming the option and the forms`, () => {
      assert.throws(
        () => parseTimeBound(bad, '--until', NOW),
        (error: unknown) => isMeshgateError(error) && error.code === 'MG_USAGE' && error.message.startsWith(`--until ${JSON.stringify(bad)} is not a time`) && /RFC 3339.*15m/.test(error.message),
      );
    });
  }
});
