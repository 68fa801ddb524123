/**
 * OpenTelemetry traces of Firestore calls: the Firestore SDK through meshgate to Google's
 * official emulator, `traceparent` metadata from the caller, and an OTLP/HTTP receiver on
 * loopback. Each call's span is the caller's child in its audit event's trace, says what
 * was called on which collection by whom and what policy decided, and keeps document ids out.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { FIRESTORE_POLICY, FIRESTORE_SKIP, FIRESTORE_WORKLOADS, FS_METHOD, onlyRpc, PERMISSION_DENIED, RULE, startFirestoreFixture, type FirestoreFixture, type GrpcFailure } from '../../helpers/firestore.ts';
import { startOtlpReceiver, type OtlpReceiver } from '../../helpers/otlp-receiver.ts';

const PROJECT = 'mg-it-traces';
// The reporter's rule lets its spans show document paths whole; the auditor's shows none.
const TRACED_POLICY = FIRESTORE_POLICY.replace('collections: ["orders/**"], operations: [read] }', 'collections: ["orders/**"], operations: [read], traceQueryText: full }').replace(
  'collections: ["**"], operations: [read, admin] }',
  'collections: ["**"], operations: [read, admin], traceQueryText: none }',
);

describe('traces of Firestore calls through meshgate (official emulator)', { skip: FIRESTORE_SKIP }, () => {
  let receiver: OtlpReceiver;
  let fx: FirestoreFixture;

  before(async () => {
    receiver = await startOtlpReceiver();
    fx = await startFirestoreFixture({
      name: `fstraces${randomBytes(3).toString('hex')}`,
      project: PROJECT,
      workloads: FIRESTORE_WORKLOADS,
      policy: TRACED_POLICY,
      config: (config) => {
        config.tracing = { otlp: { endpoint: receiver.endpoint } };
      },
    });
    await fx.reseed({ 'orders/o-77': { status: 'open', total: 10 }, 'users/u1': { name: 'Ada' } });
  });
  after(async () => {
    await fx?.stop();
    await receiver?.close();
  });

  it('is the caller’s child in the audit event’s trace, with the call, the collection, who and which rule', async () => {
    const trace = randomBytes(16).toString('hex');
    const parent = randomBytes(8).toString('hex');
    const client = fx.client('orders', { customHeaders: { traceparent: `00-${trace}-${parent}-01` } });
    const mark = await fx.mark();
    await client.doc('orders/o-77').get();
    const event = await onlyRpc(fx, mark, 'BatchGetDocuments');
    assert.equal(event.traceId, trace);
    const [span] = await receiver.waitFor((s) => s.traceId === trace && s.kind === 'SPAN_KIND_CLIENT');
    assert.ok(span !== undefined, `a span in the caller's trace; spans: ${JSON.stringify(receiver.spans.map((s) => s.name))}`);
    assert.equal(span.parentSpanId, parent);
    assert.equal(span.name, 'BatchGetDocuments orders');
    assert.deepEqual(
      {
        system: span.attributes['db.system.name'],
        operation: span.attributes['db.operation.name'],
        collection: span.attributes['db.collection.name'],
        namespace: span.attributes['db.namespace'],
        rpc: [span.attributes['rpc.system.name'], span.attributes['rpc.method'], span.attributes['rpc.status_code']],
        server: [span.attributes['server.address'], span.attributes['server.port']],
        identity: span.attributes['meshgate.identity'],
        rule: span.attributes['meshgate.rule'],
        decision: span.attributes['meshgate.decision'],
        paths: span.attributes['meshgate.firestore.paths'],
        documents: span.attributes['meshgate.firestore.documents'],
        session: span.attributes['meshgate.session.id'],
      },
      {
        system: 'gcp.firestore',
        operation: 'BatchGetDocuments',
        collection: 'orders',
        namespace: PROJECT,
        rpc: ['grpc', FS_METHOD('BatchGetDocuments'), 'OK'],
        server: [fx.emulator.host, fx.emulator.port],
        identity: FIRESTORE_WORKLOADS.orders,
        rule: RULE.ordersRw,
        decision: 'allow',
        // The document id may be data; the collection is the shape.
        paths: ['orders/?'],
        documents: 1,
        session: event.sessionId,
      },
    );
    assert.equal(span.status.code, 'STATUS_CODE_UNSET');
    const durationUs = Number(span.endNs - span.startNs) / 1000;
    assert.ok(Math.abs(durationUs - event.durationUs) < 2000, `span ${durationUs} µs, audit ${event.durationUs} µs`);
    const [identity] = await receiver.waitFor((s) => s.parentSpanId === span.spanId && s.name === 'identity');
    assert.equal(identity?.attributes['meshgate.identity'], FIRESTORE_WORKLOADS.orders);
    assert.ok(identity!.startNs >= span.startNs && identity!.endNs <= span.endNs, 'identity lies within the call');
  });

  it('marks a denied call, in the caller’s trace, with the code and rule that refused it', async () => {
    const trace = randomBytes(16).toString('hex');
    const client = fx.client('orders', { customHeaders: { traceparent: `00-${trace}-${randomBytes(8).toString('hex')}-01` } });
    await assert.rejects(client.doc('users/u1').get(), (error: GrpcFailure) => error.code === PERMISSION_DENIED);
    const [span] = await receiver.waitFor((s) => s.traceId === trace && s.kind === 'SPAN_KIND_CLIENT');
    assert.ok(span !== undefined);
    assert.equal(span.status.code, 'STATUS_CODE_ERROR');
    assert.equal(span.attributes['error.type'], 'MG_POLICY_DENIED');
    assert.equal(span.attributes['meshgate.decision'], 'deny');
    assert.equal(span.attributes['rpc.status_code'], 'PERMISSION_DENIED');
    assert.equal(span.attributes['db.response.status_code'], 'PERMISSION_DENIED');
  });

  it('starts a trace of its own, in the audit event’s trace id, for a caller without traceparent', async () => {
    const mark = await fx.mark();
    await fx.client('orders').doc('orders/o-77').get();
    const event = await onlyRpc(fx, mark, 'BatchGetDocuments');
    const [span] = await receiver.waitFor((s) => s.traceId === event.traceId && s.kind === 'SPAN_KIND_CLIENT');
    assert.ok(span !== undefined, 'a span in the trace the audit event records');
    assert.equal(span.parentSpanId, '');
  });

  it('shows paths whole or not at all where the allowing rule says traceQueryText', async () => {
    const spanOf = async (workload: 'reporter' | 'auditor') => {
      const trace = randomBytes(16).toString('hex');
      await fx.client(workload, { customHeaders: { traceparent: `00-${trace}-${randomBytes(8).toString('hex')}-01` } }).doc('orders/o-77').get();
      const [span] = await receiver.waitFor((s) => s.traceId === trace && s.kind === 'SPAN_KIND_CLIENT');
      assert.ok(span !== undefined, `a span for ${workload}`);
      return span;
    };
    const reporter = await spanOf('reporter');
    assert.equal(reporter.attributes['meshgate.rule'], RULE.reporter);
    assert.deepEqual(reporter.attributes['meshgate.firestore.paths'], ['orders/o-77']);
    const auditor = await spanOf('auditor');
    assert.equal(auditor.attributes['meshgate.rule'], RULE.auditor);
    assert.equal(auditor.attributes['meshgate.firestore.paths'], undefined);
    assert.equal(auditor.attributes['db.collection.name'], 'orders', 'the collection is the shape, shown in every mode');
  });
});
