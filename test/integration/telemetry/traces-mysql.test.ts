/**
 * OpenTelemetry traces of MySQL sessions, end to end: meshgate in front of the real MariaDB,
 * real mysql2 clients sending sqlcommenter traceparents, and an OTLP/HTTP receiver on
 * loopback that decodes what meshgate exports with opentelemetry-proto's own definitions.
 * Each statement's span is the caller's child in the trace id its audit event records (and,
 * for a trace meshgate starts, the one in the tag MariaDB saw); attributes follow the stable
 * database conventions; a login has its steps; sampling decides, and a meshgate whose sampling
 * is off exports nothing at all.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import type { ConnectionEvent, StatementEvent } from '../../../src/audit/index.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { DEFAULT_POLICY, MARIADB, startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../../helpers/otlp-receiver.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

const traceId = () => randomBytes(16).toString('hex');
const spanId = () => randomBytes(8).toString('hex');
const comment = (trace: string, span: string, flags = '01') => `/*traceparent='00-${trace}-${span}-${flags}'*/`;
const AUTH_ENV = `MESHGATE_TEST_OTLP_AUTH_${randomBytes(3).toString('hex')}`;

describe('traces of MySQL sessions through meshgate', { skip: missing }, () => {
  let receiver: OtlpReceiver;
  let h: Harness;
  let conn: mysql.Connection;

  before(async () => {
    receiver = await startOtlpReceiver();
    process.env[AUTH_ENV] = 'Bearer test-token';
    // The readers' rule lets its callers' spans show their statements whole.
    const policy = DEFAULT_POLICY.replace('role: "{ro}" }', 'role: "{ro}", traceQueryText: full }');
    assert.notEqual(policy, DEFAULT_POLICY);
    h = await startHarness({
      name: 'traces',
      workloads: STANDARD_WORKLOADS,
      policy,
      setupSql: ['CREATE TABLE {db}.items (id INT PRIMARY KEY, owner VARCHAR(80), qty INT)', "INSERT INTO {db}.items VALUES (42, 'ada@example.com', 3)"],
      config: (config) => {
        config.tracing = { otlp: { endpoint: receiver.endpoint, headers: { 'x-scope-orgid': 'shop', authorization: { env: AUTH_ENV } } }, serviceName: 'meshgate-test' };
      },
    });
    conn = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('orders') });
  });
  after(async () => {
    delete process.env[AUTH_ENV];
    await cleanup(() => conn?.end(), () => h?.stop(), () => receiver?.close());
  });

  const statements = async () => (await h.readAudit()).filter((e) => e['type'] === 'statement') as unknown as StatementEvent[];
  const oneSpan = async (match: (span: ReceivedSpan) => boolean, what: string) => {
    const found = await receiver.waitFor(match);
    assert.equal(found.length, 1, `one span for ${what}; spans: ${JSON.stringify(receiver.spans.map((s) => s.name))}`);
    return found[0]!;
  };

  it('is the caller’s child, in the audit event’s trace, with the database conventions and who, what rule and which role', async () => {
    const trace = traceId();
    const parent = spanId();
    await conn.query(`SELECT id, qty FROM items WHERE id = 42 AND owner = 'ada@example.com' ${comment(trace, parent)}`);
    const event = (await statements()).find((e) => e.traceId === trace)!;
    assert.ok(event !== undefined, 'the statement is audited under the caller’s trace id');
    assert.ok(!('parent' in event), 'the caller’s span id is reported to subscribers, not written to the audit file');
    const span = await oneSpan((s) => s.traceId === trace, 'the SELECT');
    assert.equal(span.parentSpanId, parent);
    assert.equal(span.kind, 'SPAN_KIND_CLIENT');
    assert.equal(span.name, `SELECT ${h.database}`);
    assert.deepEqual(
      {
        system: span.attributes['db.system.name'],
        namespace: span.attributes['db.namespace'],
        operation: span.attributes['db.operation.name'],
        server: [span.attributes['server.address'], span.attributes['server.port']],
        identity: span.attributes['meshgate.identity'],
        rule: span.attributes['meshgate.rule'],
        decision: span.attributes['meshgate.decision'],
        role: span.attributes['meshgate.role'],
        session: span.attributes['meshgate.session.id'],
        rows: span.attributes['db.response.returned_rows'],
      },
      {
        system: 'mariadb',
        namespace: h.database,
        operation: 'SELECT',
        server: [MARIADB.host, MARIADB.port],
        identity: STANDARD_WORKLOADS.orders,
        rule: event.rule,
        decision: 'allow',
        role: h.roles.rw,
        session: event.sessionId,
        rows: 1,
      },
    );
    assert.equal(event.rule, 'writers/orders');
    // Literals and the caller's comment are gone; the shape of the statement stays.
    assert.equal(span.attributes['db.query.text'], 'SELECT id, qty FROM items WHERE id = ? AND owner = ?');
    assert.equal(span.status.code, 'STATUS_CODE_UNSET');
    const durationUs = Number(span.endNs - span.startNs) / 1000;
    assert.ok(Math.abs(durationUs - event.durationUs) < 2000, `span ${durationUs} µs, audit ${event.durationUs} µs`);
    assert.deepEqual(span.resource['service.name'], 'meshgate-test');
    assert.equal(span.scope, 'meshgate');
    // Headers reach the collector, the secret one read from the environment.
    assert.ok(receiver.requests.every((headers) => headers['x-scope-orgid'] === 'shop' && headers['authorization'] === 'Bearer test-token'));
  });

  it('starts a trace of its own in the trace id the audit records and the tag MariaDB saw', async () => {
    const [rows] = await conn.query('SELECT SQL_NO_CACHE INFO AS info FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()');
    const tagged = /traceparent='00-([0-9a-f]{32})-([0-9a-f]{16})-01'/.exec((rows as { info: string }[])[0]!.info);
    assert.ok(tagged !== null, 'MariaDB saw the statement tagged with a trace id');
    const event = (await statements()).find((e) => e.traceId === tagged[1]);
    assert.ok(event !== undefined, 'the audit event has the trace id of the tag');
    const span = await oneSpan((s) => s.traceId === tagged[1], 'the untraced SELECT');
    assert.equal(span.parentSpanId, '', 'a root span');
    assert.equal(span.spanId, tagged[2], 'the span the tag names, so MariaDB’s processlist and logs lead to it');
    assert.equal(span.attributes['meshgate.session.id'], event.sessionId);
  });

  it('has a login span with its identity, policy and upstream steps, linked from the session’s statements', async () => {
    const connectionEvent = (await h.readAudit()).find((e) => e['type'] === 'connection' && e['decision'] === 'allow') as unknown as ConnectionEvent;
    const login = await oneSpan((s) => s.name === 'mysql login' && s.attributes['meshgate.session.id'] === connectionEvent.sessionId, 'the login');
    assert.equal(login.kind, 'SPAN_KIND_SERVER');
    assert.equal(login.attributes['meshgate.identity'], STANDARD_WORKLOADS.orders);
    assert.equal(login.attributes['meshgate.decision'], 'allow');
    assert.equal(login.attributes['meshgate.rule'], 'writers/orders');
    assert.equal(login.attributes['meshgate.role'], h.roles.rw);
    assert.equal(login.attributes['meshgate.upstream.connection_id'], connectionEvent.upstreamConnectionId);
    const steps = await receiver.waitFor((s) => s.parentSpanId === login.spanId && s.traceId === login.traceId, 3);
    assert.deepEqual(steps.map((s) => s.name).sort(), ['identity', 'policy', 'upstream']);
    for (const step of steps) assert.ok(step.startNs >= login.startNs && step.endNs <= login.endNs, `${step.name} lies within the login`);
    const statementSpans = receiver.spans.filter((s) => s.attributes['meshgate.session.id'] === connectionEvent.sessionId && s.name !== 'mysql login' && s.parentSpanId !== login.spanId);
    assert.ok(statementSpans.length >= 2);
    for (const span of statementSpans) assert.deepEqual(span.links, [{ traceId: login.traceId, spanId: login.spanId }]);
  });

  it('marks refusals and MariaDB’s errors, still in the caller’s trace, without MariaDB’s message (it may quote data)', async () => {
    const refusedTrace = traceId();
    await assert.rejects(conn.query(`SELECT 'meshgate_role' ${comment(refusedTrace, spanId())}`));
    const refused = await oneSpan((s) => s.traceId === refusedTrace, 'the refused statement');
    assert.equal(refused.status.code, 'STATUS_CODE_ERROR');
    assert.equal(refused.attributes['error.type'], 'MG_TAG_IMITATED');
    assert.equal(refused.attributes['meshgate.decision'], 'deny');
    assert.equal((await statements()).find((e) => e.traceId === refusedTrace)?.decision, 'deny');

    const failedTrace = traceId();
    await assert.rejects(conn.query(`INSERT INTO items VALUES (42, 'bob@example.com', 1) ${comment(failedTrace, spanId())}`), /Duplicate entry/);
    const failed = await oneSpan((s) => s.traceId === failedTrace, 'the failed INSERT');
    assert.equal(failed.status.code, 'STATUS_CODE_ERROR');
    assert.equal(failed.attributes['db.response.status_code'], '1062');
    assert.equal(failed.attributes['error.type'], '1062');
    assert.equal(failed.status.message, 'error 1062 (SQLSTATE 23000)');
    assert.equal(failed.attributes['db.query.text'], 'INSERT INTO items VALUES (?, ?, ?)');
  });

  it('traces a prepared statement’s prepare and execute under the caller’s trace', async () => {
    const trace = traceId();
    const parent = spanId();
    await conn.execute(`SELECT qty FROM items WHERE id = ? ${comment(trace, parent)}`, [42]);
    const spans = await receiver.waitFor((s) => s.traceId === trace, 2);
    assert.deepEqual(spans.map((s) => s.attributes['meshgate.mysql.command']).sort(), ['execute', 'prepare']);
    for (const span of spans) {
      assert.equal(span.parentSpanId, parent);
      assert.equal(span.attributes['db.query.text'], 'SELECT qty FROM items WHERE id = ?');
    }
  });

  it('shows a statement whole where the allowing rule says traceQueryText: full, and sanitized elsewhere', async () => {
    const reader = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('analytics') });
    try {
      const readerTrace = traceId();
      await reader.query(`SELECT qty FROM items WHERE owner = 'ada@example.com' ${comment(readerTrace, spanId())}`);
      const whole = await oneSpan((s) => s.traceId === readerTrace, 'the reader’s SELECT');
      assert.equal(whole.attributes['meshgate.rule'], 'readers/analytics');
      assert.match(String(whole.attributes['db.query.text']), /^SELECT qty FROM items WHERE owner = 'ada@example\.com'/);
      const readerError = traceId();
      await assert.rejects(reader.query(`SELECT nope FROM items ${comment(readerError, spanId())}`));
      const failed = await oneSpan((s) => s.traceId === readerError, 'the reader’s failing SELECT');
      assert.match(failed.status.message ?? '', /Unknown column 'nope'/, 'MariaDB’s own message, as full allows');
    } finally {
      await reader.end();
    }
    const writerTrace = traceId();
    await conn.query(`SELECT qty FROM items WHERE owner = 'ada@example.com' ${comment(writerTrace, spanId())}`);
    const sanitized = await oneSpan((s) => s.traceId === writerTrace, 'the writer’s SELECT');
    assert.equal(sanitized.attributes['db.query.text'], 'SELECT qty FROM items WHERE owner = ?');
  });

  it('follows the caller’s sampled flag: no span for a statement whose caller does not sample', async () => {
    const unsampled = traceId();
    const sampled = traceId();
    await conn.query(`SELECT 1 ${comment(unsampled, spanId(), '00')}`);
    await conn.query(`SELECT 2 ${comment(sampled, spanId())}`);
    await oneSpan((s) => s.traceId === sampled, 'the sampled statement');
    assert.equal(receiver.spans.filter((s) => s.traceId === unsampled).length, 0);
    assert.ok((await statements()).some((e) => e.traceId === unsampled), 'the audit records it all the same');
  });

  it('refused logins have a span too, the step that refused marked', async () => {
    const staging = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('staging') }).then(
      (c) => c,
      (error: Error) => error,
    );
    assert.ok(staging instanceof Error, 'staging is denied');
    const login = await oneSpan((s) => s.name === 'mysql login' && s.attributes['meshgate.identity'] === STANDARD_WORKLOADS.staging, 'the refused login');
    assert.equal(login.status.code, 'STATUS_CODE_ERROR');
    assert.equal(login.attributes['error.type'], 'MG_POLICY_DENIED');
    const [policy] = await receiver.waitFor((s) => s.parentSpanId === login.spanId && s.name === 'policy');
    assert.equal(policy?.status.code, 'STATUS_CODE_ERROR');
    assert.equal(receiver.spans.filter((s) => s.parentSpanId === login.spanId && s.name === 'upstream').length, 0, 'no upstream step after a denial');
  });

  it('listens to the audit channels only while it runs', async () => {
    assert.equal(diagnostics.hasSubscribers('meshgate:mysql:statement'), true);
    await h.stop();
    assert.equal(diagnostics.hasSubscribers('meshgate:mysql:statement'), false);
    assert.equal(diagnostics.hasSubscribers('meshgate:mysql:connection'), false);
  });
});

describe('a meshgate whose sampling is off', { skip: missing }, () => {
  let receiver: OtlpReceiver;
  let h: Harness;

  before(async () => {
    receiver = await startOtlpReceiver();
    h = await startHarness({
      name: 'tracesoff',
      workloads: STANDARD_WORKLOADS,
      config: (config) => {
        config.tracing = { otlp: { endpoint: receiver.endpoint }, sampling: { ratio: 0, followCaller: false } };
      },
    });
  });
  after(async () => cleanup(() => h?.stop(), () => receiver?.close()));

  it('exports no span at all, sampled callers included, while the audit records everything', async () => {
    const trace = traceId();
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('orders') });
    try {
      await conn.query(`SELECT 1 ${comment(trace, spanId())}`);
      await conn.query('SELECT 2');
    } finally {
      await conn.end();
    }
    const audited = (await h.readAudit()).filter((e) => e['type'] === 'statement');
    assert.ok(audited.some((e) => e['traceId'] === trace));
    // Closing flushes whatever the SDK still held: nothing.
    await h.stop();
    assert.deepEqual(receiver.spans, []);
    assert.equal(receiver.requests.length, 0);
  });
});
