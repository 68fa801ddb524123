import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { loadPolicyDocuments } from '../../../src/policy/loader.ts';
import { subjectFromPrincipal } from '../../../src/policy/subject.ts';
import type { CompiledPolicy, Decision } from '../../../src/policy/types.ts';

const HEAD = 'apiVersion: meshgate.dev/v1alpha1\nkind: AccessPolicy\n';

/** One ALLOW document granting role `r` on `dbs` to callers matching `source` (YAML flow). */
function allow(name: string, source: string | null, dbs = '["*"]', role = 'r'): string {
  const from = source === null ? '' : `      from: [{ source: ${source} }]\n`;
  return `${HEAD}metadata: { name: ${name} }\nspec:\n  action: ALLOW\n  rules:\n    - ${from.trimStart()}      to: [{ mariadb: { databases: ${dbs}, role: ${role} } }]\n`;
}

function deny(name: string, source: string | null, dbs: string | null = null): string {
  const from = source === null ? '' : `from: [{ source: ${source} }]`;
  const to = dbs === null ? '' : `to: [{ mariadb: { databases: ${dbs} } }]`;
  const body = [from, to].filter((s) => s !== '').join('\n      ');
  return `${HEAD}metadata: { name: ${name} }\nspec:\n  action: DENY\n  rules:\n    - ${body === '' ? '{}' : body}\n`;
}

function load(...docs: string[]): CompiledPolicy {
  return loadPolicyDocuments(docs.map((text, i) => ({ name: `p${i}.yaml`, text })));
}

function decide(policy: CompiledPolicy, principal: string, database: string | null = 'shop'): Decision {
  return policy.evaluate(subjectFromPrincipal(principal), { engine: 'mysql', database });
}

const ORDERS = 'spiffe://cluster.local/ns/shop/sa/orders';

describe('source matching (Istio glob semantics)', () => {
  const cases: [string, string, string, boolean][] = [
    ['exact principal', '{ principals: ["cluster.local/ns/shop/sa/orders"] }', ORDERS, true],
    ['exact principal, other sa', '{ principals: ["cluster.local/ns/shop/sa/orders"] }', 'spiffe://cluster.local/ns/shop/sa/web', false],
    ['principal written as spiffe URI', '{ principals: ["spiffe://cluster.local/ns/shop/sa/orders"] }', ORDERS, true],
    ['principal "*"', '{ principals: ["*"] }', 'spiffe://x.org/anything', true],
    ['principal prefix', '{ principals: ["cluster.local/ns/shop/*"] }', ORDERS, true],
    ['principal prefix miss', '{ principals: ["cluster.local/ns/shop/*"] }', 'spiffe://cluster.local/ns/shopx/sa/a', false],
    ['principal suffix', '{ principals: ["*/sa/orders"] }', 'spiffe://other.td/ns/x/sa/orders', true],
    ['principal suffix miss', '{ principals: ["*/sa/orders"] }', 'spiffe://td/ns/x/sa/orders2', false],
    ['principal list is OR', '{ principals: ["a/ns/b/sa/c", "cluster.local/ns/shop/sa/orders"] }', ORDERS, true],
    ['notPrincipals excludes', '{ notPrincipals: ["cluster.local/ns/shop/*"] }', ORDERS, false],
    ['notPrincipals admits others', '{ notPrincipals: ["cluster.local/ns/shop/*"] }', 'spiffe://cluster.local/ns/a/sa/b', true],
    ['namespace exact', '{ namespaces: ["shop"] }', ORDERS, true],
    ['namespace prefix', '{ namespaces: ["sh*"] }', ORDERS, true],
    ['namespace suffix miss', '{ namespaces: ["*op2"] }', ORDERS, false],
    ['namespace "*" needs a namespace', '{ namespaces: ["*"] }', 'spiffe://cluster.local/workload/x', false],
    ['notNamespaces excludes', '{ notNamespaces: ["shop"] }', ORDERS, false],
    ['notNamespaces admits ID without namespace', '{ notNamespaces: ["*"] }', 'spiffe://cluster.local/vm/db', true],
    ['trustDomains', '{ trustDomains: ["cluster.local"] }', ORDERS, true],
    ['trustDomains miss', '{ trustDomains: ["other.td"] }', ORDERS, false],
    ['fields are AND', '{ namespaces: ["shop"], notPrincipals: ["*/sa/orders"] }', ORDERS, false],
    ['fields are AND, all hold', '{ namespaces: ["shop"], trustDomains: ["cluster.*"] }', ORDERS, true],
  ];
  for (const [name, source, principal, expected] of cases) {
    it(name, () => {
      assert.equal(decide(load(allow('a', source)), principal).allow, expected);
    });
  }

  it('several sources are OR', () => {
    const text = `${HEAD}metadata: { name: a }\nspec:\n  action: ALLOW\n  rules:\n    - from:\n        - source: { namespaces: [web] }\n        - source: { namespaces: [shop] }\n      to: [{ mariadb: { role: r } }]\n`;
    assert.equal(decide(load(text), ORDERS).allow, true);
    assert.equal(decide(load(text), 'spiffe://cluster.local/ns/batch/sa/x').allow, false);
  });

  it('omitted from matches any caller', () => {
    assert.equal(decide(load(allow('a', null)), 'spiffe://any.td/whatever').allow, true);
  });
});

describe('database matching', () => {
  const cases: [string, string, string | null, boolean][] = [
    ['exact', '["shop"]', 'shop', true],
    ['exact is case-sensitive', '["shop"]', 'Shop', false],
    ['prefix', '["reporting_*"]', 'reporting_eu', true],
    ['suffix', '["*_ro"]', 'shop_ro', true],
    ['"*" matches any', '["*"]', 'anything', true],
    ['null needs "*"', '["shop", "reporting_*"]', null, false],
    ['null with "*"', '["shop", "*"]', null, true],
  ];
  for (const [name, dbs, database, expected] of cases) {
    it(name, () => assert.equal(decide(load(allow('a', null, dbs)), ORDERS, database).allow, expected));
  }

  it('ALLOW target without databases matches any database, and none', () => {
    const text = `${HEAD}metadata: { name: a }\nspec:\n  action: ALLOW\n  rules:\n    - to: [{ mariadb: { role: r } }]\n`;
    assert.equal(decide(load(text), ORDERS, null).allow, true);
    assert.equal(decide(load(text), ORDERS, 'x').allow, true);
  });

  it('the first matching target of a rule supplies role and LOCAL INFILE', () => {
    const text = `${HEAD}metadata: { name: a }\nspec:\n  action: ALLOW\n  rules:\n    - to:\n        - mariadb: { databases: [shop], role: writer, allowLocalInfile: true }\n        - mariadb: { databases: ["*"], role: reader }\n`;
    const policy = load(text);
    assert.deepEqual(
      { role: decide(policy, ORDERS, 'shop').role, infile: decide(policy, ORDERS, 'shop').allowLocalInfile },
      { role: 'writer', infile: true },
    );
    assert.deepEqual(
      { role: decide(policy, ORDERS, 'other').role, infile: decide(policy, ORDERS, 'other').allowLocalInfile },
      { role: 'reader', infile: false },
    );
  });
});

describe('decision semantics', () => {
  it('denies by default with a reason naming the caller and the database', () => {
    const policy = load(allow('a', '{ namespaces: [web] }'));
    const d = decide(policy, ORDERS);
    assert.deepEqual(d, {
      policyVersion: policy.version,
      allow: false,
      ruleId: null,
      role: null,
      allowLocalInfile: false,
      auditParameters: 'none',
      googleServiceAccount: null,
      traceQueryText: null,
      serviceClass: 'default',
      reason: `no ALLOW rule matches ${ORDERS} for database shop; add one to the policy directory`,
    });
  });

  it('default deny for a connection without database says why', () => {
    const d = decide(load(allow('a', null, '["shop"]')), ORDERS, null);
    assert.match(d.reason, /names no database.*databases "\*"/);
  });

  it('allows with the rule id, role and reason', () => {
    const policy = load(allow('orders-read-write', null, '["shop"]', 'shop_writer'));
    const d = decide(policy, ORDERS);
    assert.deepEqual(d, {
      policyVersion: policy.version,
      allow: true,
      ruleId: 'orders-read-write/0',
      role: 'shop_writer',
      allowLocalInfile: false,
      auditParameters: 'types',
      googleServiceAccount: null,
      traceQueryText: null,
      serviceClass: 'default',
      reason: 'allowed by rule orders-read-write/0 as role shop_writer',
    });
  });

  it('a matching DENY beats every ALLOW, in either file order', () => {
    const a = allow('a', '{ principals: ["cluster.local/ns/shop/sa/orders"] }');
    const d = deny('deny-staging', '{ namespaces: [shop] }');
    for (const policy of [load(a, d), load(d, a)]) {
      const decision = decide(policy, ORDERS);
      assert.equal(decision.allow, false);
      assert.equal(decision.ruleId, 'deny-staging/0');
      assert.equal(decision.reason, 'denied by rule deny-staging/0 (DENY for namespaces shop)');
    }
  });

  it('a DENY rule with no `to` matches every request, including no database', () => {
    const policy = load(allow('a', null), deny('d', '{ namespaces: [shop] }'));
    assert.equal(decide(policy, ORDERS, 'x').allow, false);
    assert.equal(decide(policy, ORDERS, null).allow, false);
  });

  it('a DENY rule listing databases matches only those (and null only via "*")', () => {
    const policy = load(allow('a', null), deny('d', null, '["secrets"]'));
    assert.equal(decide(policy, ORDERS, 'secrets').reason, 'denied by rule d/0 (DENY for every caller on databases secrets)');
    assert.equal(decide(policy, ORDERS, 'shop').allow, true);
    assert.equal(decide(policy, ORDERS, null).allow, true);
    assert.equal(decide(load(allow('a', null), deny('d', null, '["*"]')), ORDERS, null).allow, false);
  });

  it('among matching ALLOW rules the first in file, document, rule order decides', () => {
    const two = `${HEAD}metadata: { name: b }\nspec:\n  action: ALLOW\n  rules:\n    - id: first\n      to: [{ mariadb: { role: one } }]\n    - id: second\n      to: [{ mariadb: { role: two } }]\n`;
    assert.equal(decide(load(two), ORDERS).ruleId, 'b/first');
    assert.equal(decide(load(allow('a', null, '["*"]', 'zero'), two), ORDERS).role, 'zero');
    assert.equal(decide(load(two, allow('a', null, '["*"]', 'zero')), ORDERS).role, 'one');
  });

  it('first-allow-wins also holds between indexed exact principals and glob rules', () => {
    const exactFirst = load(allow('x', `{ principals: ["${ORDERS}"] }`, '["*"]', 'exact'), allow('y', '{ namespaces: [shop] }', '["*"]', 'glob'));
    const globFirst = load(allow('y', '{ namespaces: [shop] }', '["*"]', 'glob'), allow('x', `{ principals: ["${ORDERS}"] }`, '["*"]', 'exact'));
    assert.equal(decide(exactFirst, ORDERS).role, 'exact');
    assert.equal(decide(globFirst, ORDERS).role, 'glob');
  });

  it('decisions are frozen so an audit event can hold them', () => {
    const d = decide(load(allow('a', null)), ORDERS);
    assert.ok(Object.isFrozen(d));
  });

  it('ruleCount and sources describe the load', () => {
    const policy = load(allow('a', null), deny('d', null));
    assert.equal(policy.ruleCount, 2);
    assert.deepEqual(policy.sources, ['p0.yaml', 'p1.yaml']);
  });
});

describe('subjectFromPrincipal', () => {
  it('accepts the SPIFFE and the Istio form alike', () => {
    const expected = {
      spiffeId: ORDERS,
      trustDomain: 'cluster.local',
      namespace: 'shop',
      serviceAccount: 'orders',
      principal: 'cluster.local/ns/shop/sa/orders',
    };
    assert.deepEqual({ ...subjectFromPrincipal(ORDERS) }, expected);
    assert.deepEqual({ ...subjectFromPrincipal('cluster.local/ns/shop/sa/orders') }, expected);
  });

  it('leaves namespace null outside the ns/sa layout', () => {
    const s = subjectFromPrincipal('spiffe://example.org/vm/db-backup');
    assert.equal(s.namespace, null);
    assert.equal(s.serviceAccount, null);
  });

  for (const bad of ['', 'spiffe://', 'spiffe://Example.org/x', 'spiffe://td', 'td/', 'td//x', 'td/ns/../x', 'td/a b', 'spiffe://td/x?y']) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(() => subjectFromPrincipal(bad), { code: 'MG_SPIFFE_ID_INVALID' });
    });
  }
});
