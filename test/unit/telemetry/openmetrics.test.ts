/**
 * The OpenMetrics exposition Prometheus asks for: the same families as the text format, each
 * latency bucket's latest trace id as its exemplar, and rendering it leaves the text format's
 * names (`_total`) as they were.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMetricsRegistry } from '../../../src/telemetry/metrics/index.ts';
import { acceptsOpenMetrics } from '../../../src/telemetry/metrics/openmetrics.ts';

const sources = { version: '9.9.9-test', audit: { pending: 0, backPressureSeconds: 0, refusal: null }, policy: () => ({ version: 'v1', rules: 1 }) };
const TRACE_FAST = '0af7651916cd43dd8448eb211c80319c';
const TRACE_SLOW = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('the OpenMetrics exposition', () => {
  it('names a trace id on each latency bucket an observation fell in, and keeps the text format as it was', async () => {
    const metrics = createMetricsRegistry(sources, { processMetrics: false });
    const family = metrics.events.statements;
    const cell = family.cell('mysql', 'SELECT', 'completed');
    family.observe(cell, 0.0003, TRACE_FAST);
    family.observe(cell, 0.3, TRACE_SLOW);
    metrics.events.decisions.cell('mysql', 'allow', 'p/r').value++;
    const before = await metrics.text();
    const open = await metrics.openMetrics();
    assert.match(open, /^meshgate_statement_duration_seconds_bucket\{engine="mysql",verb="SELECT",outcome="completed",le="0.0005"\} 1 # \{trace_id="0af7651916cd43dd8448eb211c80319c"\} 0.0003 \d+(\.\d+)?$/m);
    assert.match(open, /^meshgate_statement_duration_seconds_bucket\{[^}]*le="0.5"\} 2 # \{trace_id="4bf92f3577b34da6a3ce929d0e0e4736"\} 0.3 /m);
    assert.doesNotMatch(open, /le="0.001"\} 1 #/, 'a bucket no observation fell in has no exemplar');
    // OpenMetrics: the counter family without _total, its sample with it; one # EOF at the end.
    assert.match(open, /^# TYPE meshgate_policy_decisions counter$/m);
    assert.match(open, /^meshgate_policy_decisions_total\{engine="mysql",decision="allow",rule="p\/r"\} 1$/m);
    assert.ok(open.endsWith('# EOF\n'));
    const after = await metrics.text();
    assert.equal(after, before, 'the text exposition is unchanged by an OpenMetrics scrape');
    assert.match(after, /^# TYPE meshgate_policy_decisions_total counter$/m);
    assert.doesNotMatch(after, /trace_id/, 'the text format has no exemplars');
  });

  it('is what a scraper gets when it accepts it, as Prometheus does', () => {
    assert.equal(acceptsOpenMetrics('application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1'), true);
    assert.equal(acceptsOpenMetrics('text/plain'), false);
    assert.equal(acceptsOpenMetrics(undefined), false);
  });
});
