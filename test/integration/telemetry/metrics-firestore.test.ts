/**
 * Metrics of Firestore calls: the Firestore SDK through meshgate to Google's official
 * emulator, scraped from meshgate's plain metrics listener. A read allowed by its rule and one
 * policy refuses are timed by method and outcome and counted as decisions by rule; no
 * document path or identity is in the exposition.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { FIRESTORE_POLICY, FIRESTORE_SKIP, FIRESTORE_WORKLOADS, onlyRpc, PERMISSION_DENIED, startFirestoreFixture, type FirestoreFixture, type GrpcFailure } from '../../helpers/firestore.ts';
import { prometheusMissing, promtoolCheck } from '../../helpers/prometheus.ts';

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const match = /^([a-z_:]+)\{(.*)\} (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const present = match[2]!.split(/,(?=[a-z_]+=")/);
    if (wanted.length === present.length && wanted.every((w) => present.includes(w))) return Number(match[3]);
  }
  return undefined;
}

describe('metrics of Firestore calls through meshgate (official emulator)', { skip: FIRESTORE_SKIP }, () => {
  let fx: FirestoreFixture;
  let scrape: () => Promise<string>;

  before(async () => {
    fx = await startFirestoreFixture({
      name: `fsmetrics${randomBytes(3).toString('hex')}`,
      project: 'mg-it-metrics',
      workloads: FIRESTORE_WORKLOADS,
      policy: FIRESTORE_POLICY,
      config: (config) => {
        config.metrics = { listen: '127.0.0.1:0' };
      },
    });
    const port = fx.harness.meshgate.metricsPort;
    scrape = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    await fx.reseed({ 'orders/o-1': { status: 'open' }, 'users/u1': { name: 'Ada' } });
  });
  after(() => fx?.stop());

  it('times calls by method and outcome and counts decisions by rule', async () => {
    const client = fx.client('orders');
    const mark = await fx.mark();
    await client.doc('orders/o-1').get();
    const allowed = await onlyRpc(fx, mark, 'BatchGetDocuments');
    await assert.rejects(client.doc('users/u1').get(), (error: GrpcFailure) => error.code === PERMISSION_DENIED);
    const text = await scrape();
    assert.equal(sample(text, 'meshgate_rpc_duration_seconds_count', { engine: 'firestore', method: 'BatchGetDocuments', outcome: 'completed' }), 1);
    assert.equal(sample(text, 'meshgate_rpc_duration_seconds_count', { engine: 'firestore', method: 'BatchGetDocuments', outcome: 'denied' }), 1);
    assert.equal(sample(text, 'meshgate_policy_decisions_total', { engine: 'firestore', decision: 'allow', rule: allowed.rule! }), 1);
    assert.equal(sample(text, 'meshgate_policy_decisions_total', { engine: 'firestore', decision: 'deny', rule: 'none' }), 1);
    for (const secretish of ['orders/o-1', 'users/u1', FIRESTORE_WORKLOADS.orders]) assert.ok(!text.includes(secretish), `no ${secretish} in the exposition`);
    if (prometheusMissing() === false) {
      const lint = promtoolCheck(text);
      assert.equal(lint.code, 0, lint.output);
    }
  });
});
