/**
 * The rule index (rule-index.ts) finds the rule a linear scan would: the first matching DENY
 * in file order, else the first matching ALLOW. explain() walks every rule linearly with the
 * same matchers, so the two must agree for any policy and caller.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadPolicyDocuments } from '../../../src/policy/loader.ts';
import { subjectFromPrincipal } from '../../../src/policy/subject.ts';
import type { PolicyRequest, Subject } from '../../../src/policy/types.ts';

const NAMESPACES = ['shop', 'shop-preview', 'shopping', 'staging', 'web'];
const ACCOUNTS = ['orders', 'orders-v2', 'web'];

const globArb = (values: readonly string[]) =>
  fc.oneof(
    fc.constantFrom(...values),
    fc.constantFrom(...values).map((v) => `${v.slice(0, 3)}*`),
    fc.constantFrom(...values).map((v) => `*${v.slice(-2)}`),
    fc.constant('*'),
  );
const principalArb = fc.oneof(
  fc.tuple(fc.constantFrom(...NAMESPACES), fc.constantFrom(...ACCOUNTS)).map(([ns, sa]) => `td/ns/${ns}/sa/${sa}`),
  fc.constantFrom(...NAMESPACES).map((ns) => `td/ns/${ns}/*`),
  fc.constantFrom('td/ns/sho*', '*/sa/orders', '*'),
);
const sourceArb = fc
  .record(
    {
      principals: fc.array(principalArb, { minLength: 1, maxLength: 2 }),
      namespaces: fc.array(globArb(NAMESPACES), { minLength: 1, maxLength: 2 }),
      authMethods: fc.subarray(['mtls', 'jwt'] as const, { minLength: 1 }),
      claims: fc.record({ env: fc.array(globArb(['prod', 'staging', 'dev']), { minLength: 1, maxLength: 2 }) }),
    },
    { requiredKeys: [] },
  )
  // A source with claims that excludes jwt cannot match: the loader refuses it.
  .filter((source) => Object.keys(source).length > 0 && !(source.claims !== undefined && source.authMethods !== undefined && !source.authMethods.includes('jwt')));
const ruleArb = fc.record({ from: fc.option(fc.array(sourceArb, { minLength: 1, maxLength: 2 }), { nil: undefined }), db: fc.constantFrom('a', 'b', '*') });
const docArb = fc.record({ action: fc.constantFrom('ALLOW', 'DENY'), rules: fc.array(ruleArb, { minLength: 1, maxLength: 5 }) });

function text(docs: { action: string; rules: { from?: object[]; db: string }[] }[]): string[] {
  return docs.map((doc, d) => {
    const rules = doc.rules.map((rule) => {
      const from = rule.from === undefined ? '' : `from: ${JSON.stringify(rule.from.map((source) => ({ source })))}, `;
      const to = doc.action === 'ALLOW' ? `to: [{ mariadb: { databases: ["${rule.db}"], role: r } }]` : `to: [{ mariadb: { databases: ["${rule.db}"] } }]`;
      return `    - { ${from}${to} }`;
    });
    return `apiVersion: meshgate.dev/v1alpha1\nkind: AccessPolicy\nmetadata: { name: p${d} }\nspec:\n  action: ${doc.action}\n  rules:\n${rules.join('\n')}\n`;
  });
}

const claimsArb = fc.oneof(fc.constantFrom('prod', 'staging', 'prod-eu'), fc.subarray(['dev', 'prod', 'staging']), fc.constant(7));
const subjectArb = fc
  .tuple(fc.constantFrom(...NAMESPACES), fc.constantFrom(...ACCOUNTS), fc.constantFrom('mtls', 'jwt'), claimsArb)
  .map(([ns, sa, authMethod, env]): Subject => ({ ...subjectFromPrincipal(`spiffe://td/ns/${ns}/sa/${sa}`), authMethod, ...(authMethod === 'jwt' ? { claims: { env } } : {}) }));

describe('rule index', () => {
  it('decides by the rule a linear scan finds first (DENY before ALLOW, file order)', () => {
    fc.assert(
      fc.property(fc.array(docArb, { minLength: 1, maxLength: 6 }), fc.array(fc.tuple(subjectArb, fc.constantFrom('a', 'b')), { minLength: 1, maxLength: 10 }), (docs, calls) => {
        const policy = loadPolicyDocuments(text(docs).map((t, i) => ({ name: `p${i}.yaml`, text: t })));
        for (const [subject, database] of calls) {
          const request: PolicyRequest = { engine: 'mysql', database };
          const trace = policy.explain(subject, request).trace.filter((entry) => entry.matched);
          const linear = trace.find((entry) => entry.action === 'DENY') ?? trace.find((entry) => entry.action === 'ALLOW') ?? null;
          assert.equal(policy.evaluate(subject, request).ruleId, linear?.ruleId ?? null);
        }
      }),
      { numRuns: 500 },
    );
  });
});
