/**
 * Statement events are serialized from their session's parts (statement-json.ts), not by
 * JSON.stringify: the text must be exactly what JSON.stringify gives — the file, its hashes
 * and everything that reads it depend on it — for any facts a session can report, including
 * strings JSON must escape and numbers it cannot hold.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { eventBody, GENESIS_HASH } from '../../../src/audit/chain.ts';
import { AuditRecorder, type StatementFacts } from '../../../src/audit/recorder.ts';
import type { StatementEvent } from '../../../src/audit/types.ts';
import type { Identity } from '../../../src/identity/types.ts';
import { memoryAuditSink } from '../../helpers/audit.ts';

/** Every kind of text: plain, any UTF-16 (lone surrogates too), and the characters JSON escapes. */
const anyText = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('', '"', '\\', '\n\r\t\b\f', '\u0000\u001f\u007f', '\ud800', 'a\udfffb', '\u2028\u2029', '</script>'));
const anyNumber = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER));
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null });
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const identity = fc.record({
  spiffeId: anyText,
  trustDomain: anyText,
  namespace: maybe(anyText),
  serviceAccount: maybe(anyText),
  principal: anyText,
  authMethod: fc.constantFrom('mtls', 'jwt', 'xfcc'),
  certificate: fc.constant({ serialNumber: '01', notBefore: '', notAfter: '', fingerprint256: 'ab' }),
}) as fc.Arbitrary<Identity>;

const start = fc.record({
  engine: fc.constantFrom('mysql', 'firestore'),
  sessionId: anyText,
  identity,
  role: maybe(anyText),
  rule: maybe(anyText),
  upstreamConnectionId: maybe(anyNumber),
  startedAt: fc.integer({ min: 0 }),
  policyVersion: optional(maybe(anyText)),
  dryRun: optional(maybe(fc.record({ rule: maybe(anyText), decision: fc.constantFrom('allow', 'deny'), reason: anyText }))),
});

const upstreamError = fc.record({ code: fc.integer({ min: 1000, max: 4000 }), message: anyText, sqlState: optional(anyText) });
const facts = fc.record({
  command: anyText,
  verb: maybe(anyText),
  verbs: optional(fc.array(maybe(anyText), { maxLength: 4 })),
  statement: maybe(anyText),
  truncated: optional(fc.boolean()),
  statementBytes: optional(maybe(anyNumber)),
  statementSha256: optional(maybe(anyText)),
  traceId: anyText,
  database: maybe(anyText),
  decision: fc.constantFrom('allow', 'deny'),
  rowsReturned: anyNumber,
  rowsAffected: anyNumber,
  durationUs: anyNumber,
  outcome: fc.constantFrom('completed', 'failed', 'unknown'),
  error: maybe(upstreamError),
  prepared: optional(maybe(fc.record({ statementId: maybe(fc.integer()), parameters: fc.array(fc.record({ type: anyText }), { maxLength: 3 }) }))),
  throttleWaitMs: optional(anyNumber),
}) as unknown as fc.Arbitrary<StatementFacts>;

/** What the sink wrote before: the whole event through JSON.stringify, seq and prev spliced in. */
function stringified(event: object, seq: number, prev: string): string {
  return `${JSON.stringify(event).slice(0, -1)},"seq":${seq},"prev":"${prev}"}`;
}

describe('statement event serialization', () => {
  it('writes exactly what JSON.stringify writes, for any session and any facts', () => {
    fc.assert(
      fc.property(start, fc.array(facts, { minLength: 1, maxLength: 3 }), fc.option(fc.record({ rule: maybe(anyText), policyVersion: maybe(anyText) })), (session, statements, redecision) => {
        const sink = memoryAuditSink();
        const recorder = new AuditRecorder(sink).openSession(session as never);
        recorder.statement(statements[0]!);
        if (redecision !== null) recorder.redecided(redecision.rule, { policyVersion: redecision.policyVersion });
        for (const f of statements.slice(1)) recorder.statement(f);
        for (const [i, event] of (sink.events as StatementEvent[]).entries()) {
          assert.equal(eventBody(event, i + 1, GENESIS_HASH), stringified(event, i + 1, GENESIS_HASH));
          JSON.parse(eventBody(event, i + 1, GENESIS_HASH));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('leaves the serialized parts out of what subscribers and other sinks see', () => {
    const sink = memoryAuditSink();
    const recorder = new AuditRecorder(sink).openSession({ engine: 'mysql', sessionId: 's1', identity: { spiffeId: 'spiffe://a/b', trustDomain: 'a', namespace: null, serviceAccount: null, principal: 'a/b', authMethod: 'mtls' } as Identity, role: 'r', rule: null, upstreamConnectionId: 1, startedAt: 0 });
    recorder.statement({ command: 'query', verb: 'SELECT', statement: 'SELECT 1', traceId: 'a'.repeat(32), database: null, decision: 'allow', rowsReturned: 1, rowsAffected: 0, durationUs: 1, outcome: 'completed', error: null });
    const [event] = sink.events;
    assert.deepEqual(Object.keys(event!).includes('session'), false);
    assert.equal(JSON.stringify(event).includes('"grant"'), false);
  });
});
