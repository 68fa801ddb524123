/**
 * A statement event says what the text was even when it was long: the recorder carries the
 * facts the engine reports (every verb, truncated, length, hash), and `meshgate audit tail`
 * shows every verb of a multi-statement text and that its text was cut.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuditRecorder } from '../../../src/audit/recorder.ts';
import { summarize } from '../../../src/audit/summary.ts';
import type { StatementEvent } from '../../../src/audit/types.ts';
import type { Identity } from '../../../src/identity/types.ts';
import { memoryAuditSink } from '../../helpers/audit.ts';
import { statementEvent } from './helpers.ts';

const identity: Identity = {
  spiffeId: 'spiffe://cluster.local/ns/shop/sa/orders',
  trustDomain: 'cluster.local',
  namespace: 'shop',
  serviceAccount: 'orders',
  principal: 'cluster.local/ns/shop/sa/orders',
  authMethod: 'mtls',
  certificate: { serialNumber: '01', notBefore: '', notAfter: '', fingerprint256: 'ab' },
};
const base = { command: 'query', verb: 'SELECT', statement: 'SELECT 1', traceId: 'a'.repeat(32), database: 'shop', decision: 'allow' as const, rowsReturned: 1, rowsAffected: 0, durationUs: 40, outcome: 'completed' as const, error: null };

describe('statement facts in events', () => {
  it('carries every verb, the marker, the length and the hash; older engines\' facts get defaults', () => {
    const sink = memoryAuditSink();
    const session = new AuditRecorder(sink).openSession({ engine: 'mysql', sessionId: 's1', identity, role: 'r', rule: null, upstreamConnectionId: 1, startedAt: Date.now() });
    session.statement({ ...base, verbs: ['SELECT', 'DELETE'], truncated: true, statementBytes: 71_700, statementSha256: 'f'.repeat(64) });
    session.statement(base);
    const [long, plain] = sink.events as StatementEvent[];
    assert.deepEqual([long!.verbs, long!.truncated, long!.statementBytes, long!.statementSha256], [['SELECT', 'DELETE'], true, 71_700, 'f'.repeat(64)]);
    assert.deepEqual([plain!.verbs, plain!.truncated, plain!.statementBytes, plain!.statementSha256], [['SELECT'], false, null, null]);
  });

  it('audit tail shows every verb and a cut text', () => {
    const line = summarize({ ...statementEvent(1, { verbs: ['SELECT', 'DELETE'], truncated: true, statementBytes: 71_700 }), seq: 1 });
    assert.match(line, / allow SELECT\+DELETE trace=/);
    assert.match(line, / truncated\(71700B\)/);
    const single = summarize({ ...statementEvent(2, { verbs: ['SELECT'], truncated: false, statementBytes: 8 }), seq: 2 });
    assert.match(single, / allow SELECT trace=/);
    assert.doesNotMatch(single, /truncated/);
    const hostile = summarize({ ...statementEvent(3), verbs: ['SELECT', '\u001b[2J', null], seq: 3 });
    assert.match(hostile, /SELECT\+\?\[2J\+\?/);
  });
});
