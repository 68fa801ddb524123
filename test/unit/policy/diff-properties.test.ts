/**
 * Properties of `policy diff` over random policies from small alphabets (so rules and
 * callers meet): a policy never differs from itself; what one direction gains the other
 * loses, and changes are the same both ways; and an empty diff means no random caller of
 * the same alphabets is decided differently (the stand-ins reach every case tried).
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareDecisions, diffPolicies, type PolicyDiff } from '../../../src/policy/index.ts';
import { loadPolicyDocuments } from '../../../src/policy/loader.ts';
import type { LoadedPolicy, PolicyRequest, Subject } from '../../../src/policy/types.ts';

const TDS = ['td.a', 'td.b'];
const NSS = ['shop', 'staging', 'dev-eu'];
const SAS = ['orders', 'web'];
const DBS = ['shop', 'shop_eu', 'secrets'];
const METHODS = ['mtls', 'jwt', 'xfcc'] as const;
const CLAIM_VALUES = ['prod', 'staging', 'eng'];
const COLLECTIONS = ['orders/*', 'orders/*/items/*', 'logs/**', 'tmp-*/*'];

function globs(values: readonly string[]): fc.Arbitrary<string> {
  const value = fc.constantFrom(...values);
  return fc.oneof(value, value, fc.constant('*'), value.map((v) => `${v.slice(0, 3)}*`), value.map((v) => `*${v.slice(-3)}`));
}
const PRINCIPALS = TDS.flatMap((td) => NSS.flatMap((ns) => SAS.map((sa) => `${td}/ns/${ns}/sa/${sa}`)));
const list = (arb: fc.Arbitrary<string>) => fc.option(fc.uniqueArray(arb, { minLength: 1, maxLength: 2 }), { nil: undefined });
const defined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

const sourceArb = fc
  .record({
    principals: list(globs(PRINCIPALS)),
    notPrincipals: list(fc.constantFrom(...PRINCIPALS)),
    namespaces: list(globs(NSS)),
    notNamespaces: list(globs(NSS)),
    trustDomains: list(globs(TDS)),
    authMethods: list(fc.constantFrom(...METHODS)),
    claims: fc.option(fc.dictionary(fc.constantFrom('env', 'groups'), fc.uniqueArray(globs(CLAIM_VALUES), { minLength: 1, maxLength: 2 }), { minKeys: 1, maxKeys: 1 }), { nil: undefined }),
  })
  .map(defined)
  .filter((s) => Object.keys(s).length > 0 && !(s.claims !== undefined && s.authMethods !== undefined && !s.authMethods.includes('jwt')));

function targetArb(action: 'ALLOW' | 'DENY'): fc.Arbitrary<Record<string, unknown>> {
  const databases = list(globs(DBS));
  const mariadb =
    action === 'DENY'
      ? databases.map((d) => ({ mariadb: defined({ databases: d }) }))
      : fc.record({ databases, role: fc.constantFrom('r1', 'r2'), allowLocalInfile: fc.option(fc.boolean(), { nil: undefined }), direct: fc.option(fc.boolean(), { nil: undefined }) }).map((t) => ({ mariadb: defined(t) }));
  const firestore = fc
    .record({
      collections: fc.uniqueArray(fc.constantFrom(...COLLECTIONS), { minLength: 1, maxLength: 2 }),
      operations: action === 'DENY' ? fc.option(fc.uniqueArray(fc.constantFrom('read', 'write', 'admin'), { minLength: 1 }), { nil: undefined }) : fc.uniqueArray(fc.constantFrom('read', 'write', 'admin'), { minLength: 1 }),
      serviceAccount: action === 'DENY' ? fc.constant(undefined) : fc.option(fc.constantFrom('a@p.iam.gserviceaccount.com', 'b@p.iam.gserviceaccount.com'), { nil: undefined }),
    })
    .map((t) => ({ firestore: defined(t) }));
  return fc.oneof({ weight: 3, arbitrary: mariadb }, { weight: 1, arbitrary: firestore });
}

function ruleArb(action: 'ALLOW' | 'DENY'): fc.Arbitrary<Record<string, unknown>> {
  const from = fc.option(fc.array(sourceArb.map((source) => ({ source })), { minLength: 1, maxLength: 2 }), { nil: undefined });
  const targets = fc.array(targetArb(action), { minLength: 1, maxLength: 2 });
  return fc.record({ from, to: action === 'ALLOW' ? targets : fc.option(targets, { nil: undefined }) }).map(defined);
}
const docArb = fc.constantFrom<'ALLOW' | 'DENY'>('ALLOW', 'ALLOW', 'DENY').chain((action) => fc.array(ruleArb(action), { minLength: 1, maxLength: 3 }).map((rules) => ({ action, rules })));
const policyArb = fc.array(docArb, { minLength: 1, maxLength: 4 });

function compile(docs: readonly unknown[]): LoadedPolicy {
  const text = docs.map((spec, i) => `apiVersion: meshgate.dev/v1alpha1\nkind: AccessPolicy\nmetadata: { name: p${i} }\nspec: ${JSON.stringify(spec)}\n`).join('---\n');
  return loadPolicyDocuments([{ name: 'p.yaml', text }]);
}

/** `kind identity|request` for each line, sorted. */
function keys(diff: PolicyDiff, kind: string): string[] {
  return diff.identities
    .flatMap(({ identity, lines }) => lines.filter((l) => l.kind === kind).map((l) => `${identity.label}|${identity.subject.principal}|${identity.subject.authMethod}|${l.request.label}`))
    .sort();
}

const subjectArb: fc.Arbitrary<Subject> = fc
  .tuple(
    fc.constantFrom(...TDS),
    fc.constantFrom(...NSS, 'other'),
    fc.constantFrom(...SAS, 'any'),
    fc.oneof(fc.constantFrom('mtls', 'xfcc').map((authMethod) => ({ authMethod })), fc.record({ env: fc.constantFrom(...CLAIM_VALUES, 'x') }, { requiredKeys: [] }).map((claims) => ({ authMethod: 'jwt', claims }))),
  )
  .map(([td, ns, sa, how]) => ({ spiffeId: `spiffe://${td}/ns/${ns}/sa/${sa}`, trustDomain: td, namespace: ns, serviceAccount: sa, principal: `${td}/ns/${ns}/sa/${sa}`, ...how }));
const requestArb: fc.Arbitrary<PolicyRequest> = fc.oneof(
  fc.record({ database: fc.option(fc.constantFrom(...DBS, 'other'), { nil: null }), direct: fc.boolean() }).map(({ database, direct }): PolicyRequest => (direct && database !== null ? { engine: 'mysql', database, direct } : { engine: 'mysql', database })),
  fc.record({ path: fc.constantFrom('orders/o1', 'orders', 'orders/o1/items/i1', 'logs/l1', 'logs', 'tmp-1/d'), operation: fc.constantFrom('read', 'write', 'admin') as fc.Arbitrary<'read' | 'write' | 'admin'> }).map(
    ({ path, operation }): PolicyRequest => ({ engine: 'firestore', database: '(default)', path, pathKind: path.split('/').length % 2 === 0 ? 'document' : 'collection', operation }),
  ),
);

describe('policy diff properties', () => {
  it('a policy never differs from itself', () => {
    fc.assert(
      fc.property(policyArb, (docs) => {
        const policy = compile(docs);
        assert.deepEqual(diffPolicies(policy, policy).identities, []);
        assert.deepEqual(diffPolicies(policy, compile(docs)).summary, { gain: 0, lose: 0, change: 0, dryRun: 0, lines: 0 });
      }),
      { numRuns: 150 },
    );
  });

  it('what OLD→NEW gains, NEW→OLD loses, and the reverse; changes are the same both ways', () => {
    fc.assert(
      fc.property(policyArb, policyArb, (a, b) => {
        const [pa, pb] = [compile(a), compile(b)];
        const forward = diffPolicies(pa, pb);
        const backward = diffPolicies(pb, pa);
        assert.deepEqual(keys(forward, 'gain'), keys(backward, 'lose'));
        assert.deepEqual(keys(forward, 'lose'), keys(backward, 'gain'));
        assert.deepEqual(keys(forward, 'change'), keys(backward, 'change'));
        assert.deepEqual(forward.considered, backward.considered);
      }),
      { numRuns: 150 },
    );
  });

  it('an empty diff means no caller and request from the same names is decided differently', () => {
    fc.assert(
      fc.property(policyArb, policyArb, fc.array(fc.tuple(subjectArb, requestArb), { minLength: 20, maxLength: 20 }), (a, b, probes) => {
        const [pa, pb] = [compile(a), compile(b)];
        if (diffPolicies(pa, pb).summary.lines > 0) return;
        for (const [subject, request] of probes) {
          const line = compareDecisions({ label: '', request }, pa.evaluate(subject, request), pb.evaluate(subject, request));
          assert.equal(line, null, `${subject.principal} ${JSON.stringify(subject.claims)} ${subject.authMethod} ${JSON.stringify(request)}`);
        }
      }),
      { numRuns: 200 },
    );
  });
});
