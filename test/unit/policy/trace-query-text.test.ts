/**
 * `traceQueryText` on an ALLOW target: what the spans of the callers it allows may show of
 * their statements (MariaDB) or document paths (Firestore). The decision carries it; a rule
 * that says nothing leaves it to the tracing configuration (null); a DENY grants nothing.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { loadPolicyDocuments } from '../../../src/policy/loader.ts';
import { subjectFromPrincipal } from '../../../src/policy/subject.ts';
import type { CompiledPolicy } from '../../../src/policy/types.ts';

const HEAD = 'apiVersion: meshgate.dev/v1alpha1\nkind: AccessPolicy\n';
const ORDERS = subjectFromPrincipal('spiffe://cluster.local/ns/shop/sa/orders');
const ANALYTICS = subjectFromPrincipal('spiffe://cluster.local/ns/shop/sa/analytics');

const POLICY = `${HEAD}metadata: { name: p }
spec:
  action: ALLOW
  rules:
    - id: orders
      from: [{ source: { principals: ["cluster.local/ns/shop/sa/orders"] } }]
      to:
        - mariadb: { databases: [shop], role: writer, traceQueryText: full }
        - firestore: { collections: ["orders/*"], operations: [read], traceQueryText: none }
    - id: analytics
      from: [{ source: { principals: ["cluster.local/ns/shop/sa/analytics"] } }]
      to: [{ mariadb: { databases: [shop], role: reader } }]
`;

const load = (text: string): CompiledPolicy => loadPolicyDocuments([{ name: 'p.yaml', text }]);

describe('policy: traceQueryText', () => {
  const policy = load(POLICY);

  it('is the allowing target’s, per engine', () => {
    assert.equal(policy.evaluate(ORDERS, { engine: 'mysql', database: 'shop' }).traceQueryText, 'full');
    const firestore = policy.evaluate(ORDERS, { engine: 'firestore', database: '(default)', path: 'orders/o1', pathKind: 'document', operation: 'read' });
    assert.equal(firestore.allow, true);
    assert.equal(firestore.traceQueryText, 'none');
  });

  it('is null where the rule says nothing, and for every denial', () => {
    assert.equal(policy.evaluate(ANALYTICS, { engine: 'mysql', database: 'shop' }).traceQueryText, null);
    const denied = policy.evaluate(ANALYTICS, { engine: 'mysql', database: 'other' });
    assert.equal(denied.allow, false);
    assert.equal(denied.traceQueryText, null);
  });

  it('is refused on a DENY target and outside its three values, naming the field', () => {
    const problem = (text: string) => {
      try {
        load(text);
      } catch (error) {
        if (!isMeshgateError(error)) throw error;
        assert.equal(error.code, 'MG_POLICY_INVALID');
        return error.message;
      }
      return assert.fail('expected the policy to be rejected');
    };
    const deny = `${HEAD}metadata: { name: d }\nspec:\n  action: DENY\n  rules:\n    - to: [{ mariadb: { databases: [shop], traceQueryText: full } }]\n`;
    assert.match(problem(deny), /to\[0\]\.mariadb\.traceQueryText: .*DENY/);
    assert.match(problem(POLICY.replace('traceQueryText: full', 'traceQueryText: everything')), /mariadb\.traceQueryText: .*sanitized.*full.*none/);
  });
});
