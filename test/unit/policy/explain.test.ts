import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { loadPolicyDocuments } from '../../../src/policy/loader.ts';
import { subjectFromPrincipal } from '../../../src/policy/subject.ts';
import type { Explanation } from '../../../src/policy/types.ts';

const POLICY = `apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: orders-read-write }
spec:
  action: ALLOW
  rules:
    - id: shop-rw
      from: [{ source: { principals: ["cluster.local/ns/shop/sa/orders"] } }]
      to: [{ mariadb: { databases: [shop], role: shop_writer } }]
    - id: catch-all
      from: [{ source: { namespaces: [shop] } }]
      to: [{ mariadb: { databases: ["*"], role: shop_reader } }]
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: deny-staging }
spec:
  action: DENY
  rules:
    - from:
        - source: { namespaces: [staging] }
        - source: { namespaces: ["dev-*"] }
    - to: [{ mariadb: { databases: [secrets] } }]
`;

const policy = loadPolicyDocuments([{ name: 'p.yaml', text: POLICY }]);

function explain(principal: string, database: string | null): Explanation {
  return policy.explain(subjectFromPrincipal(principal), { engine: 'mysql', database });
}

function rows(e: Explanation): string[] {
  return e.trace.map((t) => `${t.ruleId} ${t.action} ${t.matched ? 'yes' : 'no'}: ${t.why}`);
}

describe('explain', () => {
  it('traces every rule, DENY rules first, and names the one that decided', () => {
    const e = explain('cluster.local/ns/shop/sa/orders', 'shop');
    assert.equal(e.allow, true);
    assert.equal(e.ruleId, 'orders-read-write/shop-rw');
    assert.deepEqual(rows(e), [
      'deny-staging/0 DENY no: nothing in from matches (from[0]: namespace shop is not in namespaces staging; from[1]: namespace shop is not in namespaces dev-*)',
      'deny-staging/1 DENY no: the caller matches, but database shop is not in databases secrets',
      'orders-read-write/shop-rw ALLOW yes: decides: as role shop_writer',
      'orders-read-write/catch-all ALLOW yes: matches, but rule orders-read-write/shop-rw comes first',
    ]);
  });

  it('shows allow rules that lost to a DENY', () => {
    const e = explain('cluster.local/ns/shop/sa/orders', 'secrets');
    assert.equal(e.reason, 'denied by rule deny-staging/1 (DENY for every caller on databases secrets)');
    assert.deepEqual(rows(e).slice(1), [
      'deny-staging/1 DENY yes: decides: DENY for every caller on databases secrets',
      'orders-read-write/shop-rw ALLOW no: the caller matches, but database secrets is not in databases shop',
      'orders-read-write/catch-all ALLOW yes: matches, but DENY rule deny-staging/1 wins',
    ]);
  });

  it('marks a second matching DENY as matching too', () => {
    const e = explain('cluster.local/ns/dev-eu/sa/x', 'secrets');
    assert.equal(e.ruleId, 'deny-staging/0');
    assert.equal(e.reason, 'denied by rule deny-staging/0 (DENY for namespaces dev-*)');
    assert.deepEqual(rows(e).slice(0, 2), [
      'deny-staging/0 DENY yes: decides: DENY for namespaces dev-*',
      'deny-staging/1 DENY yes: matches too: DENY for every caller on databases secrets',
    ]);
  });

  it('explains a default deny for an ID without a namespace', () => {
    const e = explain('spiffe://cluster.local/vm/backup', null);
    assert.equal(e.ruleId, null);
    assert.equal(e.allow, false);
    assert.ok(e.trace.every((t) => !t.matched));
    assert.equal(e.trace[0]?.why.includes('the SPIFFE ID has no namespace'), true);
    assert.equal(e.trace[2]?.why, 'principal cluster.local/vm/backup is not in principals cluster.local/ns/shop/sa/orders');
  });

  it('agrees with evaluate', () => {
    for (const principal of ['cluster.local/ns/shop/sa/orders', 'cluster.local/ns/shop/sa/web', 'cluster.local/ns/staging/sa/a', 'x.td/y']) {
      for (const database of ['shop', 'secrets', 'other', null]) {
        const subject = subjectFromPrincipal(principal);
        const { trace, dryRun: _dryRun, ...decision } = policy.explain(subject, { engine: 'mysql', database });
        assert.deepEqual(decision, { ...policy.evaluate(subject, { engine: 'mysql', database }) });
        assert.equal(trace.length, policy.ruleCount);
      }
    }
  });
});
