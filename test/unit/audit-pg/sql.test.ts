/** The pure parts of the PostgreSQL audit: table names, the columns derived from a line, the WHERE clause `audit query --postgres` sends. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { likeOf, whereOf } from '../../../src/audit-pg/source.ts';
import { auditTable, columnsOf, jsonbTextOf } from '../../../src/audit-pg/table.ts';
import { statementEvent } from '../audit/helpers.ts';

describe('the PostgreSQL audit table', () => {
  it('takes a table or schema.table of plain lower-case names, and nothing that could be SQL', () => {
    assert.equal(auditTable().sql, '"meshgate_audit_events"');
    assert.deepEqual(auditTable('audit.events'), { name: 'audit.events', sql: '"audit"."events"', schema: 'audit' });
    for (const bad of ['Events', 'a.b.c', 'x; DROP TABLE y', '1abc', 'a"b', '']) assert.throws(() => auditTable(bad), { code: 'MG_USAGE' });
  });

  it('derives the filter columns from the line alone', () => {
    const c = columnsOf({ ...statementEvent(3, { verbs: ['SELECT', null, 'DELETE'] }) });
    assert.equal(c.ts, '2025-01-01T00:00:00.003Z');
    assert.deepEqual(c.verbs, ['select', 'delete']);
    assert.deepEqual(c.identities, ['spiffe://example.org/ns/shop/sa/orders', 'example.org/ns/shop/sa/orders']);
    assert.equal(c.namespace, 'shop');
    const rpc = columnsOf({ type: 'rpc', time: 'not a time', method: 'google.firestore.v1.Firestore/Commit', paths: ['orders/1', 7] });
    assert.deepEqual([rpc.verbs, rpc.paths, rpc.ts], [['commit'], ['orders/1'], '1970-01-01T00:00:00.000Z']);
    const credential = columnsOf({ type: 'credential', identity: null, principal: 'example.org/ns/shop/sa/orders' });
    assert.deepEqual(credential.identities, ['example.org/ns/shop/sa/orders']);
  });

  it('gives jsonb the line, except a NUL it refuses', () => {
    const line = JSON.stringify({ statement: 'a\u0000b' });
    assert.equal(jsonbTextOf('{"a":1}', { a: 1 }), null);
    assert.equal(jsonbTextOf(line, JSON.parse(line) as Record<string, unknown>), '{"statement":"a\ufffdb"}');
  });
});

describe('audit query --postgres in SQL', () => {
  it('turns globs into LIKE patterns, escaping LIKE\'s own characters', () => {
    assert.equal(likeOf('*/ns/shop/*'), '%/ns/shop/%');
    assert.equal(likeOf('a?c'), 'a_c');
    assert.equal(likeOf('100%_sure\\'), '100\\%\\_sure\\\\');
  });

  it('pushes every filter SQL can say into the WHERE clause, as parameters', () => {
    const { sql, values } = whereOf({
      replicas: ['r1'],
      filter: { identity: ['*/sa/orders'], namespace: ['shop'], trace: ['4bf92f35'], database: ['shop*'], rule: ['r?'], decision: ['allow,deny'], verb: ['Select'], type: ['statement'], collection: ['orders'] },
      window: { since: 0, until: 86_400_000 },
    });
    for (const column of ['replica', 'identities', 'namespace', 'trace_id', 'database', 'rule', 'decision', 'verbs', 'type', 'paths', 'ts >=', 'ts <']) assert.ok(sql.includes(column), `${column} in ${sql}`);
    assert.ok(!sql.includes('orders'), 'values never go into the text');
    assert.deepEqual(values.slice(0, 3), ['audit_file', ['r1'], ['%/sa/orders']]);
    assert.ok(values.some((v) => Array.isArray(v) && v[0] === '4bf92f35%'));
    assert.ok(values.some((v) => Array.isArray(v) && v.join() === 'allow,deny'));
    assert.ok(values.some((v) => Array.isArray(v) && v[0] === 'select'));
  });

  it('reads a whole traceparent as its trace id', () => {
    const { values } = whereOf({ filter: { trace: ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'] }, window: { since: null, until: null } });
    assert.deepEqual(values[1], ['4bf92f3577b34da6a3ce929d0e0e4736%']);
  });
});
