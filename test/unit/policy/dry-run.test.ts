import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadPolicyDocuments } from '../../../src/policy/loader.ts';
import { subjectFromPrincipal } from '../../../src/policy/subject.ts';
import type { LoadedPolicy, PolicyRequest } from '../../../src/policy/types.ts';

const HEAD = 'apiVersion: meshgate.dev/v1alpha1\nkind: AccessPolicy\n';

function doc(name: string, action: string, rules: string): string {
  return `${HEAD}metadata: { name: ${name} }\nspec:\n  action: ${action}\n  rules:\n${rules}`;
}

const ALLOW_SHOP = doc('shop', 'ALLOW', '    - id: rw\n      from: [{ source: { namespaces: ["shop", "staging"] } }]\n      to: [{ mariadb: { databases: ["shop"], role: shop_rw } }]\n');
const AUDIT_STAGING = doc('watch-staging', 'AUDIT', '    - id: no-staging\n      from: [{ source: { namespaces: ["staging"] } }]\n');

function load(...texts: string[]): LoadedPolicy {
  return loadPolicyDocuments(texts.map((text, i) => ({ name: `p${i}.yaml`, text })));
}

const SHOP = subjectFromPrincipal('spiffe://td/ns/shop/sa/orders');
const STAGING = subjectFromPrincipal('spiffe://td/ns/staging/sa/orders');
const DB: PolicyRequest = { engine: 'mysql', database: 'shop' };

describe('action: AUDIT (dry run)', () => {
  it('a document with action AUDIT is a DENY that is recorded, never enforced', () => {
    const policy = load(ALLOW_SHOP, AUDIT_STAGING);
    assert.equal(policy.hasDryRuns, true);
    const enforced = policy.evaluate(STAGING, DB);
    assert.equal(enforced.allow, true);
    assert.equal(enforced.ruleId, 'shop/rw');
    const dry = policy.dryRun(STAGING, DB);
    assert.equal(dry?.allow, false);
    assert.equal(dry?.ruleId, 'watch-staging/no-staging');
    assert.match(dry?.reason ?? '', /^would be denied by rule watch-staging\/no-staging \(DENY for namespaces staging\) \(action AUDIT: recorded, not enforced\)$/);
    assert.equal(dry?.policyVersion, policy.version);
    assert.equal(policy.dryRun(SHOP, DB), null);
  });

  it('switching AUDIT to DENY enforces exactly what the dry run said', () => {
    const watched = load(ALLOW_SHOP, AUDIT_STAGING);
    const enforced = load(ALLOW_SHOP, AUDIT_STAGING.replace('action: AUDIT', 'action: DENY'));
    for (const subject of [SHOP, STAGING]) {
      const dry = watched.dryRun(subject, DB);
      const now = enforced.evaluate(subject, DB);
      assert.equal(now.allow, dry === null ? watched.evaluate(subject, DB).allow : dry.allow);
      if (dry !== null) assert.equal(now.ruleId, dry.ruleId);
    }
  });

  it('a rule with action AUDIT is a dry run of its own document: a would-be ALLOW grants nothing', () => {
    const rules =
      '    - id: live\n      from: [{ source: { namespaces: ["shop"] } }]\n      to: [{ mariadb: { databases: ["shop"], role: shop_rw } }]\n' +
      '    - id: trial\n      action: AUDIT\n      serviceClass: batch\n      from: [{ source: { namespaces: ["reports"] } }]\n      to: [{ mariadb: { databases: ["shop"], role: shop_ro } }]\n';
    const policy = load(doc('mixed', 'ALLOW', rules));
    const reports = subjectFromPrincipal('spiffe://td/ns/reports/sa/nightly');
    assert.equal(policy.evaluate(reports, DB).allow, false);
    assert.equal(policy.evaluate(reports, DB).ruleId, null);
    const dry = policy.dryRun(reports, DB);
    assert.equal(dry?.allow, true);
    assert.equal(dry?.role, 'shop_ro');
    assert.match(dry?.reason ?? '', /^would be allowed by rule mixed\/trial as role shop_ro/);
    // Only enforced ALLOW rules name the classes the throttle must know.
    assert.deepEqual(policy.serviceClasses, ['default']);
    assert.equal(policy.ruleCount, 2);
  });

  it('a DENY rule marked AUDIT inside a DENY document leaves the others enforced', () => {
    const rules = '    - id: enforced\n      from: [{ source: { namespaces: ["dev"] } }]\n    - id: trial\n      action: AUDIT\n      from: [{ source: { namespaces: ["staging"] } }]\n';
    const policy = load(ALLOW_SHOP.replace('"staging"', '"staging", "dev"'), doc('deny', 'DENY', rules));
    assert.equal(policy.evaluate(subjectFromPrincipal('spiffe://td/ns/dev/sa/x'), DB).ruleId, 'deny/enforced');
    assert.equal(policy.evaluate(STAGING, DB).allow, true);
    assert.equal(policy.dryRun(STAGING, DB)?.ruleId, 'deny/trial');
  });

  it('without dry-run rules there is nothing to record', () => {
    const policy = load(ALLOW_SHOP);
    assert.equal(policy.hasDryRuns, false);
    assert.equal(policy.dryRun(STAGING, DB), null);
  });

  it('explain lists dry-run rules after the enforced ones and says what they would do', () => {
    const policy = load(ALLOW_SHOP, AUDIT_STAGING);
    const explanation = policy.explain(STAGING, DB);
    assert.equal(explanation.allow, true);
    assert.equal(explanation.dryRun?.ruleId, 'watch-staging/no-staging');
    assert.deepEqual(
      explanation.trace.map((t) => [t.ruleId, t.action, t.matched]),
      [
        ['shop/rw', 'ALLOW', true],
        ['watch-staging/no-staging', 'AUDIT', true],
      ],
    );
    assert.match(explanation.trace[1]!.why, /^would deny \(dry run, not enforced\)/);
  });

  it('an AUDIT document follows DENY rules: it grants nothing', () => {
    const bad = doc('bad', 'AUDIT', '    - to: [{ mariadb: { databases: ["shop"], role: shop_rw } }]\n');
    assert.throws(() => load(bad), /spec\.rules\[0\]\.to\[0\]\.mariadb\.role: not allowed on DENY rules/);
  });

  it('adding AUDIT documents never changes an enforced decision (property)', () => {
    const namespaces = ['shop', 'staging', 'dev', 'web'];
    const databases = ['shop', 'other', null];
    const auditDoc = fc
      .array(fc.record({ ns: fc.subarray(namespaces, { minLength: 1 }), dbs: fc.option(fc.subarray(['shop', 'other', '*'], { minLength: 1 })) }), { minLength: 1, maxLength: 4 })
      .map((rules) =>
        doc(
          'trial',
          'AUDIT',
          rules
            .map((r) => `    - from: [{ source: { namespaces: ${JSON.stringify(r.ns)} } }]\n` + (r.dbs === null ? '' : `      to: [{ mariadb: { databases: ${JSON.stringify(r.dbs)} } }]\n`))
            .join(''),
        ),
      );
    fc.assert(
      fc.property(auditDoc, (audit) => {
        const base = load(ALLOW_SHOP);
        const watched = load(ALLOW_SHOP, audit);
        for (const ns of namespaces) {
          const subject = subjectFromPrincipal(`spiffe://td/ns/${ns}/sa/a`);
          for (const database of databases) {
            const request: PolicyRequest = { engine: 'mysql', database };
            const { policyVersion: _a, ...before } = base.evaluate(subject, request);
            const { policyVersion: _b, ...after } = watched.evaluate(subject, request);
            assert.deepEqual(after, before);
          }
        }
      }),
      { numRuns: 100 },
    );
  });
});
