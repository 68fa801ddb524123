/**
 * The audit recorder: the one place events are built, from the facts engines report, and
 * the one place they are published on diagnostics channels for metrics and tracing.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import { AuditRecorder } from '../../../src/audit/recorder.ts';
import type { AuditEvent, StatementEvent } from '../../../src/audit/types.ts';
import { mgError } from '../../../src/errors/index.ts';
import type { Identity } from '../../../src/identity/types.ts';
import { memoryAuditSink } from '../../helpers/audit.ts';

const identity: Identity = {
  spiffeId: 'spiffe://cluster.local/ns/shop/sa/orders',
  trustDomain: 'cluster.local',
  namespace: 'shop',
  serviceAccount: 'orders',
  principal: 'cluster.local/ns/shop/sa/orders',
  authMethod: 'mtls',
  certificate: { serialNumber: '01', notBefore: '', notAfter: '', fingerprint256: 'ab' },
};
const statement = { command: 'query', verb: 'SELECT', statement: 'SELECT 1', traceId: 'a'.repeat(32), database: 'shop', decision: 'allow' as const, rowsReturned: 1, rowsAffected: 0, durationUs: 40, outcome: 'completed' as const, error: null };

describe('audit recorder', () => {
  it('builds statement events from facts, with the session identity, role and rule', () => {
    const sink = memoryAuditSink();
    const session = new AuditRecorder(sink).openSession({ engine: 'mysql', sessionId: 's1', identity, role: 'shop_rw', rule: 'p/r', upstreamConnectionId: 12, startedAt: Date.now() });
    session.statement(statement);
    session.statement({ ...statement, decision: 'deny', outcome: 'failed', error: mgError('MG_COMMAND_FORBIDDEN', 'no') });
    const [allowed, denied] = sink.events as StatementEvent[];
    assert.equal(allowed!.identity.spiffeId, identity.spiffeId);
    assert.deepEqual([allowed!.upstreamRole, allowed!.rule, allowed!.upstreamConnectionId], ['shop_rw', 'p/r', 12]);
    assert.equal(denied!.rule, null, 'a refusal names no allowing rule');
    assert.deepEqual(denied!.error, { code: 'MG_COMMAND_FORBIDDEN', message: 'no' });
    assert.equal(JSON.stringify(sink.events).includes('fingerprint'), false, 'no credential detail in events');
  });

  it('records a session end exactly once, counting its statements, however many times it is ended', () => {
    const sink = memoryAuditSink();
    const session = new AuditRecorder(sink).openSession({ engine: 'mysql', sessionId: 's2', identity, role: 'r', rule: null, upstreamConnectionId: null, startedAt: Date.now() });
    session.statement(statement);
    session.end({ reason: 'client quit', bytesFromClient: 10, bytesFromUpstream: 20 });
    session.end({ reason: 'meshgate shut down', bytesFromClient: 10, bytesFromUpstream: 20 });
    const ends = sink.events.filter((e) => e.type === 'session_end');
    assert.equal(ends.length, 1);
    assert.deepEqual([ends[0]!.type === 'session_end' && ends[0]!.statements, ends[0]!.type === 'session_end' && ends[0]!.reason], [1, 'client quit']);
  });

  it('an rpc event takes meshgate’s refusal, or the upstream status and its message', () => {
    const sink = memoryAuditSink();
    const recorder = new AuditRecorder(sink);
    const base = { engine: 'firestore' as const, sessionId: 'c', peer: { address: '10.0.0.1', port: 1 }, identity, xfcc: null, method: 'google.firestore.v1.Firestore/GetDocument', operation: 'read', paths: ['orders/1'], rule: 'p/r', reason: 'ok', traceId: 'b'.repeat(32), documents: 1, startedAt: process.hrtime.bigint() };
    recorder.rpc({ ...base, decision: 'deny', status: 7, outcome: 'failed', error: mgError('MG_POLICY_DENIED', 'denied') });
    recorder.rpc({ ...base, decision: 'allow', status: 5, outcome: 'failed', error: null, upstreamMessage: 'not found' });
    recorder.rpc({ ...base, decision: 'allow', status: 0, outcome: 'completed', error: null });
    assert.deepEqual(
      sink.events.map((e) => e.type === 'rpc' && e.error),
      [{ code: 'MG_POLICY_DENIED', message: 'denied' }, { code: 5, message: 'not found' }, null],
    );
  });

  it('publishes every event on meshgate:<engine>:<type> for subscribers, and the sink still gets it', () => {
    const sink = memoryAuditSink();
    const recorder = new AuditRecorder(sink);
    const seen: AuditEvent[] = [];
    const listener = (message: unknown) => seen.push(message as AuditEvent);
    diagnostics.subscribe('meshgate:mysql:statement', listener);
    diagnostics.subscribe('meshgate:mysql:connection', listener);
    try {
      recorder.connection({ engine: 'mysql', sessionId: 's3', peer: { address: '10.0.0.2', port: 2 }, tls: null, identity: null, clientUser: 'x', database: null, decision: 'deny', rule: null, reason: 'no cert', role: null, upstreamConnectionId: null, error: mgError('MG_CLIENT_CERT_MISSING', 'no cert') });
      recorder.openSession({ engine: 'mysql', sessionId: 's3', identity, role: 'r', rule: null, upstreamConnectionId: 1, startedAt: Date.now() }).statement(statement);
    } finally {
      diagnostics.unsubscribe('meshgate:mysql:statement', listener);
      diagnostics.unsubscribe('meshgate:mysql:connection', listener);
    }
    assert.deepEqual(seen.map((e) => e.type), ['connection', 'statement']);
    assert.deepEqual(seen, sink.events, 'subscribers see exactly what the sink records');
  });

  it('passes the sink’s back-pressure through', async () => {
    const sink = memoryAuditSink();
    const recorder = new AuditRecorder(sink);
    sink.backlogged = true;
    assert.equal(recorder.backlogged, true);
    let drained = false;
    recorder.onDrain(() => (drained = true));
    sink.backlogged = false;
    assert.equal(drained, true);
  });
});
