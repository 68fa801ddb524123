import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadPolicyDocuments } from '../../../src/policy/loader.ts';
import type { CompiledPolicy, PolicyRequest, Subject } from '../../../src/policy/types.ts';

// Small alphabets so random rules and random callers actually meet.
const TDS = ['td.a', 'td.b'];
const NSS = ['shop', 'staging', 'dev-eu'];
const SAS = ['orders', 'web'];
const DBS = ['shop', 'shop_eu', 'secrets'];
const METHODS = ['mtls', 'jwt', 'xfcc'] as const;
// `org.team` exercises the one nested level (and a top-level key of the same name).
const CLAIM_NAMES = ['env', 'groups', 'n', 'org.team'];
const CLAIM_VALUES = ['prod', 'staging', 'eng', 'ops', 'admins', '12', 'true', 'db'];

interface Source {
  principals?: string[];
  notPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  trustDomains?: string[];
  authMethods?: string[];
  notAuthMethods?: string[];
  claims?: Record<string, string[]>;
  notClaims?: Record<string, string[]>;
}
interface Target {
  databases?: string[];
  role?: string;
  allowLocalInfile?: boolean;
}
interface Rule {
  from?: { source: Source }[];
  to?: { mariadb: Target }[];
}
interface Doc {
  action: 'ALLOW' | 'DENY';
  rules: Rule[];
}

function globs(values: readonly string[]): fc.Arbitrary<string> {
  const value = fc.constantFrom(...values);
  return fc.oneof(value, fc.constant('*'), value.map((v) => `${v.slice(0, 3)}*`), value.map((v) => `*${v.slice(-3)}`));
}

const PRINCIPALS = TDS.flatMap((td) => NSS.flatMap((ns) => SAS.map((sa) => `${td}/ns/${ns}/sa/${sa}`)));
const principalPattern = fc.oneof(globs(PRINCIPALS), fc.constantFrom(...PRINCIPALS).map((p) => `spiffe://${p}`));
const list = (arb: fc.Arbitrary<string>) => fc.option(fc.array(arb, { minLength: 1, maxLength: 2 }), { nil: undefined });
const claimMap = fc.option(
  fc.dictionary(fc.constantFrom(...CLAIM_NAMES), fc.array(globs(CLAIM_VALUES), { minLength: 1, maxLength: 2 }), { minKeys: 1, maxKeys: 2 }),
  { nil: undefined },
);
/** The schema refuses `claims` on a source that excludes jwt (it could never match). */
const excludesJwt = (s: Source) => (s.authMethods !== undefined && !s.authMethods.includes('jwt')) || s.notAuthMethods?.includes('jwt') === true;

const sourceArb: fc.Arbitrary<Source> = fc
  .record({
    principals: list(principalPattern),
    notPrincipals: list(principalPattern),
    namespaces: list(globs(NSS)),
    notNamespaces: list(globs(NSS)),
    trustDomains: list(globs(TDS)),
    authMethods: list(fc.constantFrom(...METHODS)),
    notAuthMethods: list(fc.constantFrom(...METHODS)),
    claims: claimMap,
    notClaims: claimMap,
  })
  .map((s) => Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as Source)
  .filter((s) => Object.keys(s).length > 0 && !(s.claims !== undefined && excludesJwt(s)));

function targetArb(action: Doc['action']): fc.Arbitrary<Target> {
  const databases = list(globs(DBS));
  if (action === 'DENY') return databases.map((d) => (d === undefined ? {} : { databases: d }));
  return fc
    .record({ databases, role: fc.constantFrom('r1', 'r2', 'r3'), allowLocalInfile: fc.option(fc.boolean(), { nil: undefined }) })
    .map((t) => Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined)) as Target);
}

function ruleArb(action: Doc['action']): fc.Arbitrary<Rule> {
  const from = fc.option(fc.array(sourceArb.map((source) => ({ source })), { minLength: 1, maxLength: 2 }), { nil: undefined });
  const targets = fc.array(targetArb(action).map((mariadb) => ({ mariadb })), { minLength: 1, maxLength: 2 });
  const to = action === 'ALLOW' ? targets : fc.option(targets, { nil: undefined });
  return fc.record({ from, to }).map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as Rule);
}

const docArb = (action: Doc['action']): fc.Arbitrary<Doc> =>
  fc.array(ruleArb(action), { minLength: 1, maxLength: 3 }).map((rules) => ({ action, rules }));
const anyDocArb = fc.constantFrom<Doc['action']>('ALLOW', 'DENY').chain(docArb);
const policyArb = fc.array(anyDocArb, { minLength: 1, maxLength: 5 });

// Claims as the JWT mappings produce them: strings, a groups list (maybe empty), a number
// or boolean, and an object claim for the dotted name; sometimes a top-level `org.team` too.
const claimsArb: fc.Arbitrary<Record<string, unknown>> = fc
  .record(
    {
      env: fc.constantFrom('prod', 'staging', 'production'),
      groups: fc.array(fc.constantFrom('eng', 'ops', 'admins'), { maxLength: 3 }),
      n: fc.constantFrom<unknown>(12, 1, true, false, null),
      org: fc.constantFrom<unknown>({ team: 'db' }, { team: 'ops' }, 'db', ['db']),
      'org.team': fc.constantFrom('db', 'eng'),
    },
    { requiredKeys: [] },
  )
  .map((c) => c as Record<string, unknown>);
const callerArb = fc.oneof(
  fc.constantFrom('mtls', 'xfcc').map((authMethod) => ({ authMethod })),
  claimsArb.map((claims) => ({ authMethod: 'jwt', claims })),
  fc.constant({}),
);

const subjectArb: fc.Arbitrary<Subject> = fc.tuple(
  fc.oneof(
    fc.tuple(fc.constantFrom(...TDS), fc.constantFrom(...NSS), fc.constantFrom(...SAS)).map(([td, ns, sa]) => ({
      spiffeId: `spiffe://${td}/ns/${ns}/sa/${sa}`,
      trustDomain: td,
      namespace: ns,
      serviceAccount: sa,
      principal: `${td}/ns/${ns}/sa/${sa}`,
    })),
    fc.constantFrom(...TDS).map((td) => ({ spiffeId: `spiffe://${td}/vm/x`, trustDomain: td, namespace: null, serviceAccount: null, principal: `${td}/vm/x` })),
  ),
  callerArb,
).map(([who, how]) => ({ ...who, ...how }));
const requestArb: fc.Arbitrary<PolicyRequest> = fc
  .option(fc.constantFrom(...DBS, 'other'), { nil: null })
  .map((database) => ({ engine: 'mysql', database }));

/** Docs as YAML (JSON is YAML), split over files at random-free fixed points. */
function compile(docs: readonly Doc[]): CompiledPolicy {
  const texts = docs.map(
    (doc, i) => `apiVersion: meshgate.dev/v1alpha1\nkind: AccessPolicy\nmetadata: { name: p${i} }\nspec: ${JSON.stringify(doc)}\n`,
  );
  const sources = [];
  for (let i = 0; i < texts.length; i += 2) sources.push({ name: `f${i}.yaml`, text: texts.slice(i, i + 2).join('---\n') });
  return loadPolicyDocuments(sources);
}

// The reference: the semantics written down as plainly as possible, regexes and all.
function globRef(pattern: string, value: string): boolean {
  const escaped = pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`).test(value);
}
const anyRef = (patterns: string[] | undefined, value: string | null, whenAbsent: boolean): boolean =>
  patterns === undefined ? whenAbsent : value !== null && patterns.some((p) => globRef(p.replace(/^spiffe:\/\//, ''), value));

/** A claim's text forms: a scalar's, or a list's scalar elements'; anything else has none. */
function claimTexts(claims: Subject['claims'], name: string): string[] {
  const get = (o: unknown, key: string): unknown =>
    typeof o === 'object' && o !== null && !Array.isArray(o) && Object.hasOwn(o, key) ? (o as Record<string, unknown>)[key] : undefined;
  let value = get(claims, name);
  const dot = name.indexOf('.');
  if (value === undefined && dot > 0) value = get(get(claims, name.slice(0, dot)), name.slice(dot + 1));
  const scalar = (v: unknown) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
  return (Array.isArray(value) ? value : [value]).filter(scalar).map(String);
}
const claimRef = (claims: Subject['claims'], name: string, patterns: string[]) =>
  claimTexts(claims, name).some((text) => anyRef(patterns, text, false));
const methodRef = (list: string[] | undefined, method: string | undefined, whenAbsent: boolean) =>
  list === undefined ? whenAbsent : method !== undefined && list.includes(method);

function sourceRef(s: Source, subject: Subject): boolean {
  return (
    anyRef(s.principals, subject.principal, true) &&
    !anyRef(s.notPrincipals, subject.principal, false) &&
    anyRef(s.namespaces, subject.namespace, true) &&
    !anyRef(s.notNamespaces, subject.namespace, false) &&
    anyRef(s.trustDomains, subject.trustDomain, true) &&
    methodRef(s.authMethods, subject.authMethod, true) &&
    !methodRef(s.notAuthMethods, subject.authMethod, false) &&
    Object.entries(s.claims ?? {}).every(([name, patterns]) => claimRef(subject.claims, name, patterns)) &&
    !Object.entries(s.notClaims ?? {}).some(([name, patterns]) => claimRef(subject.claims, name, patterns))
  );
}
function targetRef(t: Target, database: string | null): boolean {
  if (t.databases === undefined) return true;
  return database === null ? t.databases.includes('*') : anyRef(t.databases, database, false);
}

function reference(docs: readonly Doc[], subject: Subject, request: PolicyRequest) {
  const matches = (rule: Rule) =>
    (rule.from === undefined || rule.from.some((f) => sourceRef(f.source, subject))) &&
    (rule.to === undefined || rule.to.some((t) => targetRef(t.mariadb, request.database)));
  for (const action of ['DENY', 'ALLOW'] as const) {
    for (const [d, doc] of docs.entries()) {
      if (doc.action !== action) continue;
      for (const [r, rule] of doc.rules.entries()) {
        if (!matches(rule)) continue;
        if (action === 'DENY') return { allow: false, ruleId: `p${d}/${r}`, role: null, allowLocalInfile: false, auditParameters: 'none', googleServiceAccount: null, traceQueryText: null, serviceClass: 'default' };
        const target = rule.to?.find((t) => targetRef(t.mariadb, request.database))?.mariadb;
        return {
          allow: true,
          ruleId: `p${d}/${r}`,
          role: target?.role ?? null,
          allowLocalInfile: target?.allowLocalInfile ?? false,
          auditParameters: 'types',
          googleServiceAccount: null,
          traceQueryText: null,
          serviceClass: 'default',
        };
      }
    }
  }
  return { allow: false, ruleId: null, role: null, allowLocalInfile: false, auditParameters: 'none', googleServiceAccount: null, traceQueryText: null, serviceClass: 'default' };
}

/** A DENY rule built to match `subject` and `request`, in one of several shapes. */
function matchingDenyArb(subject: Subject, request: PolicyRequest): fc.Arbitrary<Doc> {
  const sources: Source[] = [{ principals: [subject.principal] }, { principals: ['*'] }, { trustDomains: [subject.trustDomain] }];
  if (subject.namespace !== null) sources.push({ namespaces: [`${subject.namespace.slice(0, 2)}*`] });
  if (subject.authMethod !== undefined) sources.push({ authMethods: [subject.authMethod] });
  // An absent claim always passes notClaims.
  sources.push({ notClaims: { absent: ['*'] } });
  const env = subject.claims?.env;
  if (typeof env === 'string') sources.push({ claims: { env: [`${env.slice(0, 3)}*`] } });
  const groups = subject.claims?.groups;
  if (Array.isArray(groups) && typeof groups[0] === 'string') sources.push({ claims: { groups: ['nobody', groups[0]] } });
  const targets: (Rule['to'] | undefined)[] = [undefined, [{ mariadb: { databases: ['*'] } }]];
  if (request.database !== null) targets.push([{ mariadb: { databases: ['nope', request.database] } }]);
  return fc.record({ source: fc.option(fc.constantFrom(...sources), { nil: undefined }), to: fc.constantFrom(...targets) }).map(({ source, to }) => ({
    action: 'DENY',
    rules: [{ ...(source === undefined ? {} : { from: [{ source }] }), ...(to === undefined ? {} : { to }) }],
  }));
}

describe('policy properties', () => {
  it('evaluate equals a naive reference implementation', () => {
    fc.assert(
      fc.property(policyArb, fc.array(fc.tuple(subjectArb, requestArb), { minLength: 1, maxLength: 8 }), (docs, calls) => {
        const policy = compile(docs);
        for (const [subject, request] of calls) {
          const { reason: _reason, ...decision } = policy.evaluate(subject, request);
          assert.deepEqual(decision, { ...reference(docs, subject, request), policyVersion: policy.version });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('adding a matching DENY rule anywhere always denies', () => {
    const arb = fc
      .tuple(policyArb, subjectArb, requestArb)
      .chain(([docs, subject, request]) =>
        fc.tuple(fc.constant(docs), fc.constant(subject), fc.constant(request), matchingDenyArb(subject, request), fc.nat(docs.length)),
      );
    fc.assert(
      fc.property(arb, ([docs, subject, request, denyDoc, at]) => {
        const withDeny = [...docs.slice(0, at), denyDoc, ...docs.slice(at)];
        assert.equal(compile(withDeny).evaluate(subject, request).allow, false);
      }),
      { numRuns: 300 },
    );
  });

  it('adding any DENY rule never turns a deny into an allow', () => {
    fc.assert(
      fc.property(policyArb, docArb('DENY'), fc.nat(5), subjectArb, requestArb, (docs, denyDoc, at, subject, request) => {
        const before = compile(docs).evaluate(subject, request);
        const after = compile([...docs.slice(0, at), denyDoc, ...docs.slice(at)]).evaluate(subject, request);
        if (!before.allow) assert.equal(after.allow, false);
      }),
      { numRuns: 300 },
    );
  });

  it('evaluate and explain never throw, whatever the subject and database', () => {
    const wildSubject = fc.record({
      spiffeId: fc.string(),
      trustDomain: fc.string(),
      namespace: fc.option(fc.string(), { nil: null }),
      serviceAccount: fc.option(fc.string(), { nil: null }),
      principal: fc.oneof(fc.string(), fc.constantFrom(...PRINCIPALS)),
      authMethod: fc.option(fc.oneof(fc.string(), fc.constantFrom(...METHODS)), { nil: undefined }),
      claims: fc.option(
        fc.dictionary(fc.oneof(fc.string(), fc.constantFrom(...CLAIM_NAMES, 'org', 'constructor', '__proto__')), fc.anything({ withNullPrototype: true, withObjectString: true })),
        { nil: undefined },
      ),
    }, { requiredKeys: ['spiffeId', 'trustDomain', 'namespace', 'serviceAccount', 'principal'] });
    const wildRequest = fc.option(fc.string(), { nil: null }).map((database): PolicyRequest => ({ engine: 'mysql', database }));
    fc.assert(
      fc.property(policyArb, wildSubject, wildRequest, (docs, subject, request) => {
        const policy = compile(docs);
        const decision = policy.evaluate(subject, request);
        const { trace, dryRun, ...explained } = policy.explain(subject, request);
        assert.equal(dryRun, null);
        assert.deepEqual(explained, { ...decision });
        assert.equal(trace.length, policy.ruleCount);
        assert.equal(typeof decision.reason, 'string');
      }),
      { numRuns: 300 },
    );
  });
});
