/**
 * Policy reloads and dry runs through the Firestore engine, with the SDK against Google's
 * official emulator: every rpc event names the policy version that judged it; an AUDIT rule
 * records what it would have refused without refusing it; switched to DENY by a reload, it
 * refuses exactly that, from the next call on, with no restart.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FIRESTORE_POLICY, FIRESTORE_SKIP, FIRESTORE_WORKLOADS, startFirestoreFixture, type FirestoreFixture } from '../../helpers/firestore.ts';
import { TRUST_DOMAIN } from '../../helpers/bare-harness.ts';

const WATCH_ACCOUNTS = (action: 'AUDIT' | 'DENY') => `
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: accounts-writes }
spec:
  action: ${action}
  rules:
    - id: orders
      from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/shop/sa/orders"] } }]
      to: [{ firestore: { collections: ["accounts/*"], operations: [write] } }]
`;

describe('Firestore: policy versions, dry runs and reloads (official emulator)', { skip: FIRESTORE_SKIP, timeout: 120_000 }, () => {
  let fx: FirestoreFixture;
  before(async () => {
    fx = await startFirestoreFixture({
      name: 'fsreload',
      project: 'mg-it-fs-reload',
      workloads: { orders: FIRESTORE_WORKLOADS.orders },
      policy: FIRESTORE_POLICY + WATCH_ACCOUNTS('AUDIT'),
      config: (config) => (config.policy = { ...config.policy!, watch: false }),
    });
  });
  after(async () => fx?.stop());

  it('records the dry run on the call it matches, enforces nothing, and names the version', async () => {
    const db = fx.client('orders');
    const version = fx.harness.meshgate.policy.current().version;
    const mark = await fx.mark();
    await db.doc('accounts/a1').set({ balance: 1 });
    await db.doc('orders/o1').set({ total: 2 });
    const events = await fx.rpcSince(mark, 2);
    const account = events.find((e) => e.paths.includes('accounts/a1'));
    const order = events.find((e) => e.paths.includes('orders/o1'));
    assert.equal(account?.decision, 'allow');
    assert.equal(account?.policyVersion, version);
    assert.deepEqual(account?.dryRun, {
      rule: 'accounts-writes/orders',
      decision: 'deny',
      reason: 'would be denied by rule accounts-writes/orders (DENY for principals ' + `${TRUST_DOMAIN}/ns/shop/sa/orders on Firestore write on collections accounts/* in databases (default)) (action AUDIT: recorded, not enforced)`,
    });
    assert.equal(order?.policyVersion, version);
    assert.equal(order?.dryRun, undefined);
  });

  it('switched from AUDIT to DENY by a reload, the rule refuses the next call, under the new version', async () => {
    const db = fx.client('orders');
    await writeFile(join(fx.harness.dir, 'policy', 'policy.yaml'), FIRESTORE_POLICY + WATCH_ACCOUNTS('DENY'));
    const result = await fx.harness.meshgate.reloadPolicy('signal');
    assert.equal(result.outcome, 'completed');
    const mark = await fx.mark();
    await assert.rejects(db.doc('accounts/a2').set({ balance: 3 }), /PERMISSION_DENIED|MG_POLICY_DENIED/);
    await db.doc('orders/o2').set({ total: 4 });
    const events = await fx.rpcSince(mark, 2);
    const refused = events.find((e) => e.paths.includes('accounts/a2'));
    assert.equal(refused?.decision, 'deny');
    assert.equal(refused?.rule, 'accounts-writes/orders');
    assert.equal(refused?.policyVersion, result.version);
    assert.equal(events.find((e) => e.paths.includes('orders/o2'))?.policyVersion, result.version);
  });
});
