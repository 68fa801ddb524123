/**
 * Refusals of unidentified callers are audited, and bounded: a flood from one address, or
 * from many, adds a known number of events a minute, and nothing is lost without a count.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuditRecorder } from '../../../src/audit/recorder.ts';
import type { ConnectionEvent } from '../../../src/audit/types.ts';
import { mgError } from '../../../src/errors/index.ts';
import { memoryAuditSink } from '../../helpers/audit.ts';

const limits = { perPeer: 5, total: 100, maxKeys: 4, intervalMs: 60_000 };

function setup() {
  let now = Date.UTC(2025, 0, 1);
  const sink = memoryAuditSink<ConnectionEvent>();
  const recorder = new AuditRecorder(sink, { refusals: limits, now: () => now });
  const refuse = (address: string, code: 'MG_TLS_HANDSHAKE_FAILED' | 'MG_CLIENT_TIMEOUT' = 'MG_TLS_HANDSHAKE_FAILED') =>
    recorder.refusedCaller({ engine: 'mysql', sessionId: 's', peer: { address, port: 1000 }, tls: null, identity: null, clientUser: null, database: null, decision: 'deny', rule: null, reason: 'no', role: null, upstreamConnectionId: null, error: mgError(code, 'no') });
  return { sink, recorder, refuse, advance: (ms: number) => void (now += ms) };
}

describe('refusals of unidentified callers', () => {
  it('writes the first five a minute per address and code, then one summary with the count and since when', () => {
    const { sink, recorder, refuse } = setup();
    const written = Array.from({ length: 20 }, () => refuse('10.0.0.1'));
    assert.deepEqual(written, [...Array(5).fill(true), ...Array(15).fill(false)]);
    assert.equal(sink.events.length, 5);
    recorder.flushRefusals();
    assert.equal(sink.events.length, 6);
    const summary = sink.events[5]!;
    assert.equal(summary.decision, 'deny');
    assert.equal(summary.error?.code, 'MG_TLS_HANDSHAKE_FAILED');
    assert.equal(summary.peer.address, '10.0.0.1');
    assert.equal(summary.repeats?.count, 15);
    assert.ok(summary.repeats?.since);
    assert.equal(sink.events.slice(0, 5).every((e) => e.repeats === undefined), true);
  });

  it('counts each address and each code apart, and starts again the next minute', () => {
    const { sink, refuse, advance } = setup();
    for (let i = 0; i < 7; i++) refuse('10.0.0.1');
    for (let i = 0; i < 7; i++) refuse('10.0.0.2');
    for (let i = 0; i < 7; i++) refuse('10.0.0.1', 'MG_CLIENT_TIMEOUT');
    assert.equal(sink.events.length, 15);
    advance(60_000);
    assert.equal(refuse('10.0.0.1'), true, 'a new minute');
    // The minute's summaries came first: 2 each for the three keys.
    const summaries = sink.events.filter((e) => e.repeats !== undefined);
    assert.deepEqual(summaries.map((e) => e.repeats!.count), [2, 2, 2]);
  });

  it('a flood from many addresses adds at most total + maxKeys events a minute, the overflow counted under *', () => {
    const { sink, recorder, refuse } = setup();
    for (let i = 0; i < 10_000; i++) refuse(`10.1.${i >> 8}.${i & 255}`);
    recorder.flushRefusals();
    assert.ok(sink.events.length <= limits.total + limits.maxKeys + 1, `${sink.events.length} events`);
    const counted = sink.events.reduce((n, e) => n + (e.repeats?.count ?? 1), 0);
    assert.equal(counted, 10_000, 'every refusal is either written or counted');
    assert.ok(sink.events.some((e) => e.peer.address === '*'));
  });

  it('the minute’s summaries are written without another refusal coming (a timer)', async () => {
    let now = Date.UTC(2025, 0, 1);
    const sink = memoryAuditSink<ConnectionEvent>();
    const recorder = new AuditRecorder(sink, { refusals: { ...limits, perPeer: 1, intervalMs: 50 }, now: () => now });
    const facts = { engine: 'firestore' as const, sessionId: 's', peer: { address: '10.0.0.9', port: 1 }, tls: null, identity: null, clientUser: null, database: null, decision: 'deny' as const, rule: null, reason: 'no', role: null, upstreamConnectionId: null, error: mgError('MG_CLIENT_TIMEOUT', 'no') };
    recorder.refusedCaller(facts);
    recorder.refusedCaller(facts);
    now += 50;
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(sink.events.length, 2);
    assert.equal(sink.events[1]!.repeats?.count, 1);
  });
});
