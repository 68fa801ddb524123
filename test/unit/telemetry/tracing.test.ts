/**
 * The tracing module on its own: the audit recorder (with an in-memory sink) reports facts,
 * tracing turns the published events into spans, and an OTLP/HTTP receiver on loopback
 * decodes what is exported. Sampling as configured, trace ids as recorded, and a subscriber
 * that can never take the process down.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { after, before, describe, it } from 'node:test';
import { AuditRecorder, REPORTED_FACTS, type TraceParent } from '../../../src/audit/index.ts';
import type { TracingConfig } from '../../../src/config/schema.ts';
import { startTracing, tracesUrl, type Tracing } from '../../../src/telemetry/index.ts';
import { memoryAuditSink } from '../../helpers/audit.ts';
import { WORKLOAD as identity } from '../audit/helpers.ts';
import { startOtlpReceiver, type OtlpReceiver } from '../../helpers/otlp-receiver.ts';


function config(endpoint: string, sampling: TracingConfig['sampling']): TracingConfig {
  return { otlp: { endpoint, headers: {}, timeout: '5s' }, serviceName: 'meshgate', sampling, queryText: 'sanitized' };
}

const traceparent = (flags: string): TraceParent => ({ traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), flags });

/** One statement of a session, reported as command-stages.ts reports it. */
function report(recorder: AuditRecorder, sessionId: string, traceId: string, parent: TraceParent | null): void {
  const session = recorder.openSession({ engine: 'mysql', sessionId, identity, role: 'reader', rule: 'p/r', upstreamConnectionId: 3, startedAt: Date.now() });
  session.statement({ command: 'query', verb: 'SELECT', statement: 'SELECT 1', traceId, parent, database: 'shop', decision: 'allow', rowsReturned: 1, rowsAffected: 0, durationUs: 250, outcome: 'completed', error: null });
  session.end({ reason: 'client quit', bytesFromClient: 1, bytesFromUpstream: 1 });
}

const lines: { level: string; message: string }[] = [];
const log = {
  info: (message: string) => void lines.push({ level: 'info', message }),
  warn: (message: string) => void lines.push({ level: 'warn', message }),
  error: (message: string) => void lines.push({ level: 'error', message }),
};
const options = { log, version: '0.0.0-test', instanceId: 'test' };

describe('tracing', () => {
  let receiver: OtlpReceiver;
  before(async () => (receiver = await startOtlpReceiver()));
  after(async () => receiver?.close());

  it('with ratio 0 keeps only what a sampling caller traces, as its child', async () => {
    const tracing = startTracing(config(receiver.endpoint, { ratio: 0, followCaller: true }), options);
    const recorder = new AuditRecorder(memoryAuditSink());
    const sampled = traceparent('01');
    const unsampled = traceparent('00');
    const own = randomBytes(16).toString('hex');
    report(recorder, 'a', sampled.traceId, sampled);
    report(recorder, 'b', unsampled.traceId, unsampled);
    report(recorder, 'c', own, null);
    await tracing.close();
    const traces = new Set(receiver.spans.map((s) => s.traceId));
    assert.deepEqual([traces.has(sampled.traceId), traces.has(unsampled.traceId), traces.has(own)], [true, false, false]);
    assert.equal(receiver.spans.find((s) => s.traceId === sampled.traceId)?.parentSpanId, sampled.spanId);
  });

  it('with ratio 1 starts its own traces in the trace id the audit recorded, and without followCaller overrides the caller', async () => {
    const tracing = startTracing(config(receiver.endpoint, { ratio: 1, followCaller: false }), options);
    const recorder = new AuditRecorder(memoryAuditSink());
    const own = randomBytes(16).toString('hex');
    const unsampled = traceparent('00');
    report(recorder, 'd', own, null);
    report(recorder, 'e', unsampled.traceId, unsampled);
    await tracing.close();
    const root = receiver.spans.find((s) => s.traceId === own);
    assert.equal(root?.parentSpanId, '');
    assert.equal(receiver.spans.find((s) => s.traceId === unsampled.traceId)?.parentSpanId, unsampled.spanId);
  });

  it('never lets a span it cannot make reach the process, and says so once', async () => {
    lines.length = 0;
    const tracing: Tracing = startTracing(config(receiver.endpoint, { ratio: 1, followCaller: true }), options);
    try {
      const channel = diagnostics.channel('meshgate:mysql:statement');
      channel.publish({ type: 'statement' });
      channel.publish(null);
      // An uncaught exception would fail this test file; give it the tick it would take.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      await tracing.close();
    }
    assert.deepEqual(
      lines.filter((line) => line.level === 'error').map((line) => line.message),
      ['tracing could not make a span; the operation itself is unaffected (said at most once a minute)'],
    );
  });

  it('says when the collector cannot be reached, and that spans are dropped', async () => {
    lines.length = 0;
    const closed = await startOtlpReceiver();
    await closed.close();
    const unreachable = config(closed.endpoint, { ratio: 1, followCaller: true });
    const tracing = startTracing({ ...unreachable, otlp: { ...unreachable.otlp, timeout: '1s' } }, options);
    report(new AuditRecorder(memoryAuditSink()), 'f', randomBytes(16).toString('hex'), null);
    await tracing.close();
    assert.ok(
      lines.some((line) => line.level === 'warn' && /could not be exported .* dropped/.test(line.message)),
      JSON.stringify(lines),
    );
  });

  it('adds the traces path to a collector’s base URL only', () => {
    assert.equal(tracesUrl('http://collector:4318'), 'http://collector:4318/v1/traces');
    assert.equal(tracesUrl('https://collector:4318/'), 'https://collector:4318/v1/traces');
    assert.equal(tracesUrl('https://otlp.example/api/v2/otlp/v1/traces'), 'https://otlp.example/api/v2/otlp/v1/traces');
  });
});

describe('facts reported beyond the audit event', () => {
  it('reach subscribers under a symbol key, never the file, and are not attached when nobody listens', () => {
    const sink = memoryAuditSink();
    const recorder = new AuditRecorder(sink);
    const parent = traceparent('01');
    report(recorder, 'quiet', parent.traceId, parent);
    const quiet = sink.events.find((e) => e.type === 'statement')!;
    assert.equal(REPORTED_FACTS in quiet, false, 'no facts attached with nobody listening');

    const seen: unknown[] = [];
    const listener = (message: unknown) => seen.push(message);
    diagnostics.subscribe('meshgate:mysql:statement', listener);
    try {
      report(recorder, 'heard', parent.traceId, parent);
    } finally {
      diagnostics.unsubscribe('meshgate:mysql:statement', listener);
    }
    const [published] = seen as Record<symbol, { parent?: TraceParent }>[];
    assert.deepEqual(published![REPORTED_FACTS]!.parent, parent);
    assert.equal(JSON.stringify(published).includes(parent.spanId), false, 'the span id is not serialized');
  });
});
