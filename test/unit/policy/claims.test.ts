import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { loadPolicyDocuments } from '../../../src/policy/loader.ts';
import { subjectFromPrincipal } from '../../../src/policy/subject.ts';
import type { CompiledPolicy, Explanation, Subject } from '../../../src/policy/types.ts';

const HEAD = 'apiVersion: meshgate.dev/v1alpha1\nkind: AccessPolicy\n';
const GH = 'ci.example/github/acme/shop/env/production';

function allow(name: string, source: string, role = 'r'): string {
  return `${HEAD}metadata: { name: ${name} }\nspec:\n  action: ALLOW\n  rules:\n    - from: [{ source: ${source} }]\n      to: [{ mariadb: { databases: ["*"], role: ${role} } }]\n`;
}
function deny(name: string, source: string): string {
  return `${HEAD}metadata: { name: ${name} }\nspec:\n  action: DENY\n  rules:\n    - from: [{ source: ${source} }]\n`;
}
function load(...docs: string[]): CompiledPolicy {
  return loadPolicyDocuments(docs.map((text, i) => ({ name: `p${i}.yaml`, text })));
}

/** A caller as the JWT path produces it (claims set), or as mTLS does (no claims). */
function caller(claims: Record<string, unknown> | undefined, authMethod = claims === undefined ? 'mtls' : 'jwt', principal = GH): Subject {
  return { ...subjectFromPrincipal(principal), authMethod, ...(claims === undefined ? {} : { claims }) };
}
const GITHUB = { repository: 'acme/shop', environment: 'production', ref: 'refs/heads/main', actor: 'octocat' };
const OIDC = { email: 'alice@example.com', email_verified: true, groups: ['eng', 'db-admins'], run: 42 };

function allows(source: string, subject: Subject): boolean {
  return load(allow('a', source)).evaluate(subject, { engine: 'mysql', database: 'shop' }).allow;
}

describe('claims, notClaims and authMethods semantics', () => {
  const cases: [string, string, Subject, boolean][] = [
    ['exact string claim', '{ claims: { environment: [production] } }', caller(GITHUB), true],
    ['string claim mismatch', '{ claims: { environment: [staging] } }', caller(GITHUB), false],
    ['list is OR', '{ claims: { environment: [staging, production] } }', caller(GITHUB), true],
    ['names are AND, all hold', '{ claims: { repository: [acme/shop], ref: ["refs/heads/*"] } }', caller(GITHUB), true],
    ['names are AND, one fails', '{ claims: { repository: [acme/shop], ref: ["refs/tags/*"] } }', caller(GITHUB), false],
    ['prefix glob', '{ claims: { repository: ["acme/*"] } }', caller(GITHUB), true],
    ['suffix glob', '{ claims: { email: ["*@example.com"] } }', caller(OIDC), true],
    ['suffix glob miss', '{ claims: { email: ["*@example.org"] } }', caller(OIDC), false],
    ['"*" needs the claim present', '{ claims: { environment: ["*"] } }', caller({ repository: 'acme/shop' }), false],
    ['"*" with the claim present', '{ claims: { environment: ["*"] } }', caller(GITHUB), true],
    ['array matches any element', '{ claims: { groups: [db-admins] } }', caller(OIDC), true],
    ['array with no matching element', '{ claims: { groups: [ops] } }', caller(OIDC), false],
    ['array element by glob', '{ claims: { groups: ["db-*"] } }', caller(OIDC), true],
    ['empty array never matches', '{ claims: { groups: ["*"] } }', caller({ groups: [] }), false],
    ['number as its string form', '{ claims: { run: ["42"] } }', caller(OIDC), true],
    ['boolean as its string form', '{ claims: { email_verified: ["true"] } }', caller(OIDC), true],
    ['object claim never matches', '{ claims: { org: ["*"] } }', caller({ org: { team: 'db' } }), false],
    ['null claim never matches', '{ claims: { org: ["*"] } }', caller({ org: null }), false],
    ['nested lists do not count', '{ claims: { groups: [eng] } }', caller({ groups: [['eng']] }), false],
    ['one dotted level', '{ claims: { org.team: [db] } }', caller({ org: { team: 'db' } }), true],
    ['top-level dotted name first', '{ claims: { org.team: [db] } }', caller({ 'org.team': 'db', org: { team: 'x' } }), true],
    ['no deeper than one level', '{ claims: { a.b.c: [x] } }', caller({ a: { b: { c: 'x' } } }), false],
    ['prototype members are not claims', '{ claims: { constructor: ["*"] } }', caller({}), false],
    ['absent claim never matches claims', '{ claims: { environment: [production] } }', caller({}), false],
    ['no claims at all (mTLS)', '{ claims: { environment: ["*"] } }', caller(undefined), false],
    ['notClaims excludes', '{ notClaims: { environment: [production] } }', caller(GITHUB), false],
    ['notClaims admits others', '{ notClaims: { environment: [staging] } }', caller(GITHUB), true],
    ['notClaims: absent claim passes', '{ notClaims: { environment: ["*"] } }', caller({}), true],
    ['notClaims: no claims passes', '{ notClaims: { environment: ["*"] } }', caller(undefined), true],
    ['notClaims: any element excludes', '{ notClaims: { groups: [eng] } }', caller(OIDC), false],
    ['notClaims: any name excludes', '{ notClaims: { environment: [staging], actor: [octocat] } }', caller(GITHUB), false],
    ['claims and notClaims together', '{ claims: { groups: [eng] }, notClaims: { email: ["*@contractor.io"] } }', caller(OIDC), true],
    ['authMethods jwt', '{ authMethods: [jwt] }', caller(GITHUB), true],
    ['authMethods jwt, mTLS caller', '{ authMethods: [jwt] }', caller(undefined), false],
    ['authMethods list is OR', '{ authMethods: [mtls, xfcc] }', caller(undefined, 'xfcc'), true],
    ['authMethods, method unknown', '{ authMethods: [mtls] }', subjectFromPrincipal(GH), false],
    ['notAuthMethods excludes', '{ notAuthMethods: [xfcc] }', caller(undefined, 'xfcc'), false],
    ['notAuthMethods admits others', '{ notAuthMethods: [xfcc] }', caller(undefined), true],
    ['notAuthMethods, method unknown passes', '{ notAuthMethods: [jwt] }', subjectFromPrincipal(GH), true],
    ['AND with principals', `{ principals: ["${GH}"], claims: { ref: [refs/heads/main] } }`, caller(GITHUB), true],
    ['AND with principals, claim fails', `{ principals: ["${GH}"], claims: { ref: [refs/heads/dev] } }`, caller(GITHUB), false],
  ];
  for (const [name, source, subject, expected] of cases) {
    it(name, () => assert.equal(allows(source, subject), expected));
  }

  it('a DENY rule on claims beats an ALLOW on the principal, in either order', () => {
    const a = allow('a', `{ principals: ["${GH}"] }`);
    const d = deny('no-prs', '{ claims: { event_name: [pull_request] } }');
    for (const policy of [load(a, d), load(d, a)]) {
      const decision = policy.evaluate(caller({ ...GITHUB, event_name: 'pull_request' }), { engine: 'mysql', database: 'shop' });
      assert.equal(decision.allow, false);
      assert.equal(decision.reason, 'denied by rule no-prs/0 (DENY for claim event_name in pull_request)');
      assert.equal(policy.evaluate(caller({ ...GITHUB, event_name: 'push' }), { engine: 'mysql', database: 'shop' }).allow, true);
    }
  });

  it('a DENY rule on authMethods beats every ALLOW', () => {
    const policy = load(allow('a', '{ trustDomains: ["*"] }'), deny('no-xfcc', '{ authMethods: [xfcc] }'));
    assert.equal(policy.evaluate(caller(undefined, 'xfcc'), { engine: 'mysql', database: 'shop' }).ruleId, 'no-xfcc/0');
    assert.equal(policy.evaluate(caller(undefined, 'mtls'), { engine: 'mysql', database: 'shop' }).allow, true);
  });

  it('the principal index still checks claims of exact-principal rules', () => {
    // Keyed by the exact principal, the first rule must still lose on its claim.
    const policy = load(allow('x', `{ principals: ["${GH}"], claims: { ref: [refs/heads/dev] } }`, 'dev'), allow('y', `{ principals: ["${GH}"] }`, 'any'));
    assert.equal(policy.evaluate(caller(GITHUB), { engine: 'mysql', database: 'shop' }).role, 'any');
    assert.equal(policy.evaluate(caller({ ...GITHUB, ref: 'refs/heads/dev' }), { engine: 'mysql', database: 'shop' }).role, 'dev');
  });
});

function problem(source: string): string {
  try {
    load(allow('a', source));
  } catch (error) {
    if (!isMeshgateError(error)) throw error;
    return error.message;
  }
  return assert.fail('expected the policy to be rejected');
}

describe('claims and authMethods validation', () => {
  const cases: [string, string, string][] = [
    ['claim name with a space', '{ claims: { "bad name": [x] } }', 'source.claims.bad name: "bad name" is not a claim name: use letters'],
    ['empty claim name', '{ claims: { "": [x] } }', 'is not a claim name'],
    ['__proto__ would vanish', '{ claims: { __proto__: [x] } }', 'source.claims.__proto__: "__proto__" is not a claim name'],
    ['__proto__ beside another name', '{ notClaims: { a: [y], __proto__: [x] } }', 'source.notClaims.__proto__: "__proto__" is not a claim name'],
    ['empty claims map', '{ claims: {} }', 'source.claims: must not be empty; omit the field to match anything'],
    ['empty notClaims list', '{ notClaims: { a: [] } }', 'source.notClaims.a: must not be empty'],
    ['bare string instead of list', '{ claims: { a: x } }', 'source.claims.a: expected a list, got the string "x"'],
    ['unquoted boolean', '{ claims: { email_verified: [true] } }', 'expected a string, got boolean true; quote it: claim values match as strings'],
    ['glob in the middle', '{ claims: { ref: ["refs/*/main"] } }', 'source.claims.ref[0]: "refs/*/main": "*" may appear only'],
    ['unknown auth method', '{ authMethods: [MTLS] }', 'source.authMethods[0]: expected "mtls", "jwt" or "xfcc", got the string "MTLS"'],
    ['claims without jwt', '{ authMethods: [mtls], claims: { a: [x] } }', 'source.claims: only jwt identities carry claims'],
    ['claims with notAuthMethods jwt', '{ notAuthMethods: [jwt], claims: { a: [x] } }', 'source.claims: only jwt identities carry claims'],
    ['unknown source key lists the new ones', '{ claim: { a: [x] } }', 'allowed here: principals, notPrincipals, namespaces, notNamespaces, trustDomains, authMethods, notAuthMethods, claims, notClaims'],
  ];
  for (const [name, source, expected] of cases) {
    it(name, () => assert.ok(problem(source).includes(expected), problem(source)));
  }

  it('notClaims with authMethods [mtls] is allowed (redundant, not contradictory)', () => {
    assert.equal(allows('{ authMethods: [mtls], notClaims: { a: [x] } }', caller(undefined)), true);
  });
});

describe('explain for claims and authMethods', () => {
  const POLICY = load(
    deny('no-prs', '{ claims: { event_name: [pull_request] } }'),
    deny('no-admins', '{ notAuthMethods: [mtls], notClaims: { groups: [eng] } }'),
    allow('deploy', '{ authMethods: [jwt], claims: { environment: [production], groups: ["db-*"] } }'),
  );
  function why(subject: Subject): string[] {
    const e: Explanation = POLICY.explain(subject, { engine: 'mysql', database: 'shop' });
    const { trace: _trace, dryRun: _dryRun, ...decision } = e;
    assert.deepEqual(decision, { ...POLICY.evaluate(subject, { engine: 'mysql', database: 'shop' }) });
    return e.trace.map((t) => `${t.ruleId} ${t.matched ? 'yes' : 'no'}: ${t.why}`);
  }

  it('names the claim, its value and the list', () => {
    assert.deepEqual(why(caller({ environment: 'staging', groups: ['eng'] })), [
      'no-prs/0 no: the token has no claim event_name, and the rule needs event_name in pull_request',
      'no-admins/0 no: claim groups has element eng in notClaims eng',
      'deploy/0 no: claim environment=staging is not in production',
    ]);
  });

  it('explains lists, absent claims and auth methods', () => {
    assert.deepEqual(why(caller({ environment: 'production', groups: ['ops', 'eng'], event_name: 'push' })).slice(1), [
      'no-admins/0 no: claim groups has element eng in notClaims eng',
      'deploy/0 no: claim groups=[ops, eng] has no element in db-*',
    ]);
    assert.deepEqual(why(caller(undefined)), [
      'no-prs/0 no: the caller has no claims (auth method mtls), so it has no claim event_name, and the rule needs event_name in pull_request',
      'no-admins/0 no: auth method mtls is in notAuthMethods mtls',
      'deploy/0 no: auth method mtls is not in authMethods jwt',
    ]);
    assert.equal(why(subjectFromPrincipal(GH))[2], "deploy/0 no: the caller's auth method is unknown, and the rule needs authMethods jwt");
    assert.equal(why(caller({ environment: 'production', groups: [] }))[2], 'deploy/0 no: claim groups is an empty list, and the rule needs an element in db-*');
  });

  it('says which rule decided on claims', () => {
    const rows = why(caller({ environment: 'production', groups: ['db-admins'], event_name: 'pull_request' }));
    assert.equal(rows[0], 'no-prs/0 yes: decides: DENY for claim event_name in pull_request');
    assert.equal(rows[1], 'no-admins/0 yes: matches too: DENY for notAuthMethods mtls and claim groups not in eng');
    assert.equal(rows[2], 'deploy/0 yes: matches, but DENY rule no-prs/0 wins');
  });

  it('never prints a claim value longer than 80 characters, and quotes odd ones', () => {
    const long = 'x'.repeat(500);
    const row = why(caller({ environment: long, groups: ['db-a'] }))[2]!;
    assert.equal(row, `deploy/0 no: claim environment="${'x'.repeat(80)}…" is not in production`);
    const many = Array.from({ length: 9 }, (_, i) => `g${i}`);
    assert.equal(why(caller({ environment: 'production', groups: many }))[2], 'deploy/0 no: claim groups=[g0, g1, g2, g3, g4, … 4 more] has no element in db-*');
    assert.equal(why(caller({ environment: 'prod\nuction', groups: ['db-a'] }))[2], 'deploy/0 no: claim environment="prod\\nuction" is not in production');
  });
});
