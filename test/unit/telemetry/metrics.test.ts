/**
 * The metrics module on its own: label values stay bounded whatever a client sends; the audit
 * recorder (with an in-memory sink) reports facts and the counters and histograms follow;
 * gauges read their sources at scrape time; nothing subscribes before metrics start or after
 * they stop; and the exposition passes Prometheus' own linter (`promtool check metrics`).
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { after, before, describe, it } from 'node:test';
import { AuditRecorder } from '../../../src/audit/index.ts';
import type { ConnectionEvent, SessionEndEvent } from '../../../src/audit/index.ts';
import { mgError } from '../../../src/errors/index.ts';
import { createMetricsRegistry, listen, type GaugeSources, type MetricsRegistry } from '../../../src/telemetry/metrics/index.ts';
import { HistogramFamily } from '../../../src/telemetry/metrics/cells.ts';
import { codeLabel, loginOutcome, methodLabel, sessionOutcome, verbLabel } from '../../../src/telemetry/metrics/labels.ts';
import { newOperationCounts } from '../../../src/credentials/lease-types.ts';
import { memoryAuditSink } from '../../helpers/audit.ts';
import { prometheusMissing, promtoolCheck } from '../../helpers/prometheus.ts';
import { WORKLOAD as identity } from '../audit/helpers.ts';

const CHANNELS = ['meshgate:mysql:statement', 'meshgate:mysql:connection', 'meshgate:mysql:session_end', 'meshgate:firestore:rpc', 'meshgate:identity:jwks_fetch'];

/** The value of one sample line of the exposition, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (.+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const present = (match[2] ?? '').split(/,(?=[a-z_]+=")/).filter(Boolean);
    if (wanted.every((w) => present.includes(w)) && present.length === wanted.length) return Number(match[3]);
  }
  return undefined;
}

function sources(overrides: Partial<GaugeSources> = {}): GaugeSources {
  return { version: '9.9.9-test', audit: { pending: 0, backPressureSeconds: 0, refusal: null }, policy: () => ({ version: 'abc123def456', rules: 3 }), ...overrides };
}

const denied = mgError('MG_POLICY_DENIED', 'no rule allows it');

describe('metric labels', () => {
  it('keep a known verb, call anything else other, and name commands without SQL', () => {
    assert.equal(verbLabel('SELECT', 'query'), 'SELECT');
    assert.equal(verbLabel('FROBNICATE', 'query'), 'other');
    assert.equal(verbLabel(null, 'ping'), 'ping');
    assert.equal(verbLabel(null, 'Robert; DROP'), 'other');
  });
  it('shorten a Firestore method, and call one meshgate does not serve other', () => {
    assert.equal(methodLabel('google.firestore.v1.Firestore/GetDocument'), 'GetDocument');
    assert.equal(methodLabel('/google.firestore.v1.Firestore/Nope'), 'other');
    assert.equal(methodLabel('x'.repeat(500)), 'other');
  });
  it('keep registered MG_ codes only', () => {
    assert.equal(codeLabel('MG_POLICY_DENIED'), 'MG_POLICY_DENIED');
    assert.equal(codeLabel('MG_MADE_UP'), 'other');
    assert.equal(codeLabel(1045), 'other');
    assert.equal(codeLabel(undefined), 'other');
  });
  it('tell a login denied by policy from one that failed', () => {
    const base = { decision: 'deny', error: { code: 'MG_CLIENT_CERT_MISSING', message: '' } } as unknown as ConnectionEvent;
    assert.equal(loginOutcome(base), 'failed');
    assert.equal(loginOutcome({ ...base, error: { code: 'MG_POLICY_DENIED', message: '' } }), 'denied');
    assert.equal(loginOutcome({ ...base, decision: 'allow', error: null }), 'success');
  });
  it('classify how a session ended without keeping its reason', () => {
    const end = (reason: string) => sessionOutcome({ reason } as SessionEndEvent);
    assert.deepEqual([end('client quit'), end('client closed the connection'), end('meshgate shut down'), end('upstream failed: ECONNRESET')], ['client_closed', 'client_closed', 'shutdown', 'error']);
  });
});

describe('histogram cells', () => {
  it('count into the first bucket that holds the value, cumulative in the exposition', async () => {
    const family = new HistogramFamily('t_seconds', 'test', ['a'], [0.1, 1]);
    const cell = family.cell('x');
    for (const v of [0.05, 0.1, 0.5, 2]) family.observe(cell, v);
    const { values } = await family.get();
    const buckets = values.filter((v) => v.metricName === 't_seconds_bucket').map((v) => [v.labels['le'], v.value]);
    assert.deepEqual(buckets, [[0.1, 2], [1, 3], ['+Inf', 4]]);
    assert.equal(values.find((v) => v.metricName === 't_seconds_sum')!.value, 2.65);
    assert.equal(family.cell('x'), cell, 'the same cell for the same labels');
  });
});

describe('metrics from the audit recorder', () => {
  let metrics: MetricsRegistry;
  let stop: () => void;
  const recorder = new AuditRecorder(memoryAuditSink());
  const leases = { list: async () => [{ state: 'active' as const, purpose: 'session' as const }, { state: 'revoked' as const, purpose: 'issued' as const }], operations: newOperationCounts() };
  const pool = { idleCount: 2, stats: { opened: 5, reused: 7, returned: 4, discarded: 1 } };
  const audit = { pending: 12, backPressureSeconds: 1.5, refusal: null as unknown };

  before(() => {
    for (const name of CHANNELS) assert.equal(diagnostics.channel(name).hasSubscribers, false, `nothing listens on ${name} before metrics start`);
    metrics = createMetricsRegistry(sources({ audit, pool: () => pool, leases: () => leases }));
    stop = listen(metrics, (error) => assert.fail(String(error)));
  });
  after(() => stop?.());

  it('counts logins by outcome, failures by code and policy decisions by rule', async () => {
    const facts = { engine: 'mysql', peer: { address: '10.0.0.1', port: 5 }, tls: null, clientUser: null, database: 'shop', reason: '', upstreamConnectionId: null } as const;
    recorder.connection({ ...facts, sessionId: 's1', identity, decision: 'allow', rule: 'orders/rw', role: 'rw', error: null });
    recorder.connection({ ...facts, sessionId: 's2', identity, decision: 'deny', rule: null, role: null, error: denied });
    recorder.refusedCaller({ ...facts, sessionId: 's3', identity: null, decision: 'deny', rule: null, role: null, error: mgError('MG_CLIENT_CERT_MISSING', 'none') });
    const text = await metrics.text();
    assert.equal(sample(text, 'meshgate_logins_total', { engine: 'mysql', outcome: 'success' }), 1);
    assert.equal(sample(text, 'meshgate_logins_total', { engine: 'mysql', outcome: 'denied' }), 1);
    assert.equal(sample(text, 'meshgate_logins_total', { engine: 'mysql', outcome: 'failed' }), 1);
    assert.equal(sample(text, 'meshgate_login_failures_total', { engine: 'mysql', code: 'MG_POLICY_DENIED' }), 1);
    assert.equal(sample(text, 'meshgate_login_failures_total', { engine: 'mysql', code: 'MG_CLIENT_CERT_MISSING' }), 1);
    assert.equal(sample(text, 'meshgate_policy_decisions_total', { engine: 'mysql', decision: 'allow', rule: 'orders/rw' }), 1);
    assert.equal(sample(text, 'meshgate_policy_decisions_total', { engine: 'mysql', decision: 'deny', rule: 'none' }), 1, 'the refusal before identity is no policy decision');
    assert.equal(sample(text, 'meshgate_sessions_active', { engine: 'mysql' }), 1);
  });

  it('times statements by verb and outcome, and counts how sessions ended and their bytes', async () => {
    const session = recorder.openSession({ engine: 'mysql', sessionId: 's1', identity, role: 'rw', rule: 'orders/rw', upstreamConnectionId: 9, startedAt: Date.now() });
    const statement = { command: 'query', statement: 'x', traceId: '0'.repeat(32), database: 'shop', rowsReturned: 1, rowsAffected: 0, error: null } as const;
    session.statement({ ...statement, verb: 'SELECT', decision: 'allow', durationUs: 800, outcome: 'completed' });
    session.statement({ ...statement, verb: 'SELECT', decision: 'allow', durationUs: 3000, outcome: 'completed' });
    session.statement({ ...statement, verb: 'DELETE', decision: 'deny', durationUs: 10, outcome: 'failed', error: denied });
    session.statement({ ...statement, verb: 'XYZZY', decision: 'allow', durationUs: 10, outcome: 'failed' });
    session.end({ reason: 'client quit', bytesFromClient: 100, bytesFromUpstream: 2000 });
    // A session whose client left before its OK: its login was never recorded, nor counted open.
    recorder.openSession({ engine: 'mysql', sessionId: 's9', identity, role: 'rw', rule: 'orders/rw', upstreamConnectionId: 10, startedAt: Date.now() }).end({ reason: 'client left before its OK', bytesFromClient: 0, bytesFromUpstream: 0 });
    const text = await metrics.text();
    const select = { engine: 'mysql', verb: 'SELECT', outcome: 'completed' };
    assert.equal(sample(text, 'meshgate_statement_duration_seconds_count', select), 2);
    assert.equal(sample(text, 'meshgate_statement_duration_seconds_bucket', { ...select, le: '0.001' }), 1);
    assert.equal(sample(text, 'meshgate_statement_duration_seconds_bucket', { ...select, le: '0.005' }), 2);
    assert.equal(sample(text, 'meshgate_statement_duration_seconds_sum', select), 0.0038);
    assert.equal(sample(text, 'meshgate_statement_duration_seconds_count', { engine: 'mysql', verb: 'DELETE', outcome: 'denied' }), 1);
    assert.equal(sample(text, 'meshgate_statement_duration_seconds_count', { engine: 'mysql', verb: 'other', outcome: 'failed' }), 1);
    assert.equal(sample(text, 'meshgate_policy_decisions_total', { engine: 'mysql', decision: 'allow', rule: 'orders/rw' }), 4);
    assert.equal(sample(text, 'meshgate_sessions_total', { engine: 'mysql', outcome: 'client_closed' }), 2);
    assert.equal(sample(text, 'meshgate_session_bytes_total', { engine: 'mysql', direction: 'from_upstream' }), 2000);
    assert.equal(sample(text, 'meshgate_sessions_active', { engine: 'mysql' }), 0);
    assert.ok(!text.includes('0'.repeat(32)) && !text.includes(identity.spiffeId), 'no trace id or identity in any label');
  });

  it('times Firestore calls by method and counts fetches and credential requests', async () => {
    recorder.rpc({ engine: 'firestore', sessionId: 'f1', peer: { address: '10.0.0.2', port: 1 }, identity, xfcc: null, method: 'google.firestore.v1.Firestore/GetDocument', operation: 'read', paths: ['a/b'], decision: 'allow', rule: 'docs/read', reason: '', traceId: '1'.repeat(32), status: 0, error: null, documents: 1, startedAt: process.hrtime.bigint() - 2_000_000n, outcome: 'completed' });
    diagnostics.channel('meshgate:identity:jwks_fetch').publish({ outcome: 'success' });
    diagnostics.channel('meshgate:credentials:token_fetch').publish({ outcome: 'failure' });
    recorder.credential({ action: 'issue', requestId: 'r', peer: null, identity, decision: 'deny', rule: null, reason: 'no', lease: null, error: denied });
    const text = await metrics.text();
    assert.equal(sample(text, 'meshgate_rpc_duration_seconds_count', { engine: 'firestore', method: 'GetDocument', outcome: 'completed' }), 1);
    assert.equal(sample(text, 'meshgate_policy_decisions_total', { engine: 'firestore', decision: 'allow', rule: 'docs/read' }), 1);
    assert.equal(sample(text, 'meshgate_jwks_fetches_total', { outcome: 'success' }), 1);
    assert.equal(sample(text, 'meshgate_token_fetches_total', { outcome: 'failure' }), 1);
    assert.equal(sample(text, 'meshgate_credential_requests_total', { action: 'issue', outcome: 'refused' }), 1);
  });

  it('reads the pool, leases, audit, policy and build when scraped', async () => {
    leases.operations.create.completed = 3;
    leases.operations.renew.failed = 1;
    let text = await metrics.text();
    assert.equal(sample(text, 'meshgate_upstream_connections', { engine: 'mysql', state: 'idle' }), 2);
    assert.equal(sample(text, 'meshgate_upstream_pool_events_total', { engine: 'mysql', event: 'reused' }), 7);
    assert.equal(sample(text, 'meshgate_leases', { state: 'active', purpose: 'session' }), 1);
    assert.equal(sample(text, 'meshgate_leases', { state: 'creating', purpose: 'issued' }), 0);
    assert.equal(sample(text, 'meshgate_lease_operations_total', { operation: 'create', outcome: 'completed' }), 3);
    assert.equal(sample(text, 'meshgate_lease_operations_total', { operation: 'renew', outcome: 'failed' }), 1);
    assert.equal(sample(text, 'meshgate_audit_queue_events'), 12);
    assert.equal(sample(text, 'meshgate_audit_back_pressure_seconds_total'), 1.5);
    assert.equal(sample(text, 'meshgate_audit_available'), 1);
    assert.equal(sample(text, 'meshgate_policy_info', { version: 'abc123def456' }), 1);
    assert.equal(sample(text, 'meshgate_build_info', { version: '9.9.9-test', node_version: process.version }), 1);
    pool.stats.reused = 8;
    audit.backPressureSeconds = 2.5;
    audit.refusal = denied;
    text = await metrics.text();
    assert.equal(sample(text, 'meshgate_upstream_pool_events_total', { engine: 'mysql', event: 'reused' }), 8, 'a counter read at scrape is not added twice');
    assert.equal(sample(text, 'meshgate_audit_back_pressure_seconds_total'), 2.5);
    assert.equal(sample(text, 'meshgate_audit_available'), 0);
  });

  it('passes promtool check metrics', { skip: prometheusMissing() }, async () => {
    const result = promtoolCheck(await metrics.text());
    assert.equal(result.code, 0, result.output);
    assert.equal(result.output, '', 'no lint problems');
  });

  it('stops listening when closed', () => {
    stop();
    for (const name of CHANNELS) assert.equal(diagnostics.channel(name).hasSubscribers, false, `nothing listens on ${name} after metrics stop`);
  });
});
