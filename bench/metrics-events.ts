/**
 * `npx tsx bench/metrics-events.ts`: what metrics add to each statement, measured alone. A
 * session's statements go through the audit recorder into a sink that drops them, with the
 * metrics subscribed to the recorder's channels and without, interleaved; one JSON line with
 * the nanoseconds per statement of each and the difference. (The relay's own cost, in
 * `npm run bench:mysql`, is two orders of magnitude larger and noisier than this.)
 */
import { AuditRecorder, type AuditSink } from '../src/audit/index.ts';
import type { Identity } from '../src/identity/index.ts';
import { createMetricsRegistry, listen } from '../src/telemetry/metrics/index.ts';

const STATEMENTS = Number(process.env.MESHGATE_BENCH_STATEMENTS ?? 200_000);
const ROUNDS = Number(process.env.MESHGATE_BENCH_ROUNDS ?? 5);

const sink: AuditSink = { record: () => undefined, backlogged: false, onDrain: (l) => queueMicrotask(l), flush: async () => {}, close: async () => {} };
const identity: Identity = {
  spiffeId: 'spiffe://bench.local/ns/shop/sa/orders',
  trustDomain: 'bench.local',
  namespace: 'shop',
  serviceAccount: 'orders',
  principal: 'bench.local/ns/shop/sa/orders',
  authMethod: 'mtls',
  certificate: { serialNumber: '01', notBefore: '', notAfter: '', fingerprint256: 'ab' },
};
const recorder = new AuditRecorder(sink);
const session = recorder.openSession({ engine: 'mysql', sessionId: 's', identity, role: 'rw', rule: 'writers/orders', upstreamConnectionId: 1, startedAt: Date.now() });
const VERBS = ['SELECT', 'SELECT', 'SELECT', 'INSERT', 'UPDATE'];

function run(): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < STATEMENTS; i++) {
    session.statement({ command: 'query', verb: VERBS[i % VERBS.length]!, statement: 'SELECT 1', traceId: '0af7651916cd43dd8448eb211c80319c', database: 'shop', decision: 'allow', rowsReturned: 1, rowsAffected: 0, durationUs: 300 + (i % 1000), outcome: 'completed', error: null });
  }
  return Number(process.hrtime.bigint() - started) / STATEMENTS;
}

const metrics = createMetricsRegistry({ version: 'bench', audit: {}, policy: () => ({ version: 'v', rules: 1 }) });
run(); // warm-up, unsubscribed
const off: number[] = [];
const on: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  off.push(run());
  const stop = listen(metrics, (error) => {
    throw error;
  });
  on.push(run());
  stop();
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const counted = (await metrics.text()).match(/^meshgate_statement_duration_seconds_count\{[^}]*\} (\d+)$/gm)?.reduce((n, line) => n + Number(line.split(' ').pop()), 0) ?? 0;
console.log(JSON.stringify({ scenario: 'statement_through_recorder', statements: STATEMENTS, rounds: ROUNDS, off_ns: Math.round(median(off)), on_ns: Math.round(median(on)), metrics_ns_per_statement: Math.round(median(on) - median(off)), counted }));
