import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { compilePathPattern, OPEN_ID, pathMatches, pathPatternProblem, uncoveredExample, type Coverage } from '../../../src/policy/firestore-path.ts';
import { loadPolicyDocuments } from '../../../src/policy/loader.ts';
import { subjectFromPrincipal } from '../../../src/policy/subject.ts';
import type { CompiledPolicy, FirestoreOperation, FirestorePathKind, FirestoreRequest, PolicyRequest } from '../../../src/policy/types.ts';

// Small alphabets so patterns and paths meet. Every pattern segment below is satisfied by
// some id in IDS ('a*' by 'a', '*b' by 'b'), and FRESH satisfies only '*' and '**'.
const IDS = ['a', 'ab', 'b', 'items'];
const FRESH = 'zz';
const ALL_IDS = [...IDS, FRESH];
const GROUP_IDS = ['items', 'a', 'b'];
const SEGMENTS = ['a', 'ab', 'b', 'items', 'a*', '*b', '*', '**'];
/** Deeper than any generated pattern is long, so bounded walks see every behaviour. */
const MAX_PAIRS = 8;

// Without `**` a pattern must have an even number of segments (it names documents). (The
// array is not modified in place: fast-check shrinks from the generated value.)
const patternArb = fc
  .array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 5 })
  .map((segments) => (segments.includes('**') || segments.length % 2 === 0 ? segments : [...segments, '*']).join('/'));
const patternsArb = fc.array(patternArb, { minLength: 1, maxLength: 3 });
// Collection groups are decided by wildcards and the group's id; these meet them more often.
const groupPatternArb = fc
  .array(fc.constantFrom('*', '*', '*', '**', '**', 'items', 'items', 'a', 'a*'), { minLength: 1, maxLength: 6 })
  .map((segments) => (segments.includes('**') || segments.length % 2 === 0 ? segments : [...segments, '*']).join('/'));
const groupPatternsArb = fc.array(groupPatternArb, { minLength: 1, maxLength: 3 });
const idArb = fc.constantFrom(...ALL_IDS);
const idsArb = (n: number) => fc.array(idArb, { minLength: n, maxLength: n });
const docArb = fc.integer({ min: 0, max: 3 }).chain((k) => idsArb(2 * k));
const collectionArb = fc.integer({ min: 0, max: 2 }).chain((k) => idsArb(2 * k + 1));
const groupArb = fc.record({ parent: fc.integer({ min: 0, max: 2 }).chain((k) => idsArb(2 * k)), id: fc.constantFrom(...GROUP_IDS) });
const groupPath = (g: { parent: string[]; id: string }) => [...g.parent, '**', g.id].join('/');

// ---- the reference: recursion over segment lists, regexes per segment, enumeration of ids

const segmentRegexes = new Map<string, RegExp>();
function segmentRef(pattern: string, id: string): boolean {
  let regex = segmentRegexes.get(pattern);
  if (regex === undefined) {
    const escaped = pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'));
    regex = new RegExp(`^${escaped.join('.*')}$`);
    segmentRegexes.set(pattern, regex);
  }
  return regex.test(id);
}

/**
 * Whether the pattern matches the path, by the textbook recursion (memoised, so patterns
 * full of `**` stay polynomial). null in `path` is an open id: it matches a pattern
 * segment when SOME id of the alphabet would.
 */
function matchRef(pattern: readonly string[], path: readonly (string | null)[]): boolean {
  const memo = new Map<number, boolean>();
  const go = (p: number, s: number): boolean => {
    const key = p * 1000 + s;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let result: boolean;
    if (p === pattern.length) result = s === path.length;
    else if (pattern[p] === '**') result = go(p + 1, s) || (s < path.length && go(p, s + 1));
    else if (s >= path.length) result = false;
    else {
      const segment = pattern[p]!;
      const id = path[s]!;
      const ok = id === null ? ALL_IDS.some((candidate) => segmentRef(segment, candidate)) : segmentRef(segment, id);
      result = ok && go(p + 1, s + 1);
    }
    memo.set(key, result);
    return result;
  };
  return go(0, 0);
}
const anyRef = (patterns: readonly string[], path: readonly (string | null)[]) => patterns.some((p) => matchRef(p.split('/'), path));
const split = (path: string) => (path === '' ? [] : path.split('/'));

function groupWord(parent: readonly string[], id: string, pairs: number, open: string | null): (string | null)[] {
  return [...parent, ...Array<string | null>(2 * pairs).fill(open), id, open];
}

/** The semantics as written in docs/policy-firestore.md, by enumeration. */
function reference(patterns: readonly string[], path: string, kind: FirestorePathKind, coverage: Coverage): boolean {
  if (kind === 'document') return anyRef(patterns, split(path));
  if (kind === 'collection') {
    const c = split(path);
    return coverage === 'every' ? ALL_IDS.every((id) => anyRef(patterns, [...c, id])) : ALL_IDS.some((id) => anyRef(patterns, [...c, id]));
  }
  const segments = split(path);
  const parent = segments.slice(0, -2);
  const id = segments.at(-1)!;
  const pairs = Array.from({ length: MAX_PAIRS + 1 }, (_, k) => k);
  return coverage === 'every'
    ? pairs.every((k) => anyRef(patterns, groupWord(parent, id, k, FRESH)))
    : pairs.some((k) => anyRef(patterns, groupWord(parent, id, k, null)));
}

const compileAll = (patterns: readonly string[]) => patterns.map(compilePathPattern);

describe('firestore path properties', () => {
  it('generated patterns are valid', () => {
    fc.assert(fc.property(patternArb, (p) => assert.equal(pathPatternProblem(p), null)), { numRuns: 200 });
  });

  it('document paths: the matcher equals the reference, for ALLOW and DENY alike', () => {
    fc.assert(
      fc.property(patternsArb, docArb, (patterns, segments) => {
        const path = segments.join('/');
        const expected = anyRef(patterns, segments);
        assert.equal(pathMatches(compileAll(patterns), path, 'document', 'every'), expected);
        assert.equal(pathMatches(compileAll(patterns), path, 'document', 'some'), expected);
      }),
      { numRuns: 1000 },
    );
  });

  it('collections: ALLOW iff every C/<id> matches, DENY iff some C/<id> does', () => {
    fc.assert(
      fc.property(patternsArb, collectionArb, (patterns, segments) => {
        const path = segments.join('/');
        for (const coverage of ['every', 'some'] as const) {
          assert.equal(pathMatches(compileAll(patterns), path, 'collection', coverage), reference(patterns, path, 'collection', coverage), coverage);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('collection groups equal the reference (every depth up to 8 pairs)', () => {
    fc.assert(
      fc.property(fc.oneof(patternsArb, groupPatternsArb), groupArb, (patterns, group) => {
        const path = groupPath(group);
        for (const coverage of ['every', 'some'] as const) {
          assert.equal(pathMatches(compileAll(patterns), path, 'collection-group', coverage), reference(patterns, path, 'collection-group', coverage), coverage);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a covered collection group covers every concrete document in it (any ids, any depth)', () => {
    const wordArb = fc.tuple(fc.integer({ min: 0, max: 5 }), idArb).chain(([k, last]) => idsArb(2 * k).map((w) => ({ w, last })));
    fc.assert(
      fc.property(patternsArb, groupArb, fc.array(wordArb, { minLength: 1, maxLength: 10 }), (patterns, group, words) => {
        const compiled = compileAll(patterns);
        const covered = pathMatches(compiled, groupPath(group), 'collection-group', 'every');
        const touched = pathMatches(compiled, groupPath(group), 'collection-group', 'some');
        for (const { w, last } of words) {
          const document = [...group.parent, ...w, group.id, last];
          const hit = anyRef(patterns, document);
          if (covered) assert.ok(hit, `covered, yet ${document.join('/')} is not matched`);
          // A DENY must never miss a document the query can return.
          if (hit) assert.ok(touched, `${document.join('/')} matches, yet the DENY does not apply`);
          assert.equal(pathMatches(compiled, document.join('/'), 'document', 'every'), hit);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('an uncovered request comes with a document of it that no pattern matches', () => {
    const requestArb = fc.oneof(
      docArb.map((s) => ({ path: s.join('/'), kind: 'document' as const })),
      collectionArb.map((s) => ({ path: s.join('/'), kind: 'collection' as const })),
      groupArb.map((g) => ({ path: groupPath(g), kind: 'collection-group' as const })),
    );
    fc.assert(
      fc.property(patternsArb, requestArb, (patterns, { path, kind }) => {
        const example = uncoveredExample(compileAll(patterns), path, kind);
        assert.equal(example === null, pathMatches(compileAll(patterns), path, kind, 'every'));
        if (example === null) return;
        const document = split(example).map((s) => (s === OPEN_ID ? FRESH : s));
        assert.equal(document.length % 2, 0);
        assert.equal(anyRef(patterns, document), false, `${example} is matched after all`);
        // ... and it is a document the request reaches.
        if (kind === 'document') assert.equal(example, path);
        else if (kind === 'collection') assert.equal(example, `${path}/${OPEN_ID}`);
        else {
          const segments = split(path);
          assert.ok(example.startsWith(segments.slice(0, -2).map((s) => `${s}/`).join('')));
          assert.equal(document.at(-2), segments.at(-1));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a document matched by P/** stays matched for every extension', () => {
    fc.assert(
      fc.property(patternArb, docArb, fc.integer({ min: 1, max: 3 }).chain((k) => idsArb(2 * k)), (prefix, segments, extension) => {
        const pattern = compileAll([`${prefix}/**`]);
        fc.pre(pathMatches(pattern, segments.join('/'), 'document', 'every'));
        assert.ok(pathMatches(pattern, [...segments, ...extension].join('/'), 'document', 'every'));
        assert.ok(pathMatches(pattern, [...segments, ...extension.slice(1)].join('/'), 'collection', 'every'));
      }),
      { numRuns: 500 },
    );
  });

  it('"**" matches every request, whatever the coverage', () => {
    const all = compileAll(['**']);
    fc.assert(
      fc.property(docArb, collectionArb, groupArb, fc.constantFrom<Coverage>('every', 'some'), (d, c, g, coverage) => {
        assert.ok(pathMatches(all, d.join('/'), 'document', coverage));
        assert.ok(pathMatches(all, c.join('/'), 'collection', coverage));
        assert.ok(pathMatches(all, groupPath(g), 'collection-group', coverage));
      }),
    );
  });

  it('"orders/*" matches exactly orders/<id> and the collection orders', () => {
    const orders = compileAll(['orders/*']);
    const path = fc.array(fc.constantFrom('orders', ...IDS), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(path, fc.constantFrom<Coverage>('every', 'some'), groupArb, (segments, coverage, group) => {
        const kind = segments.length % 2 === 0 ? 'document' : 'collection';
        const expected = kind === 'document' ? segments.length === 2 && segments[0] === 'orders' : segments.length === 1 && segments[0] === 'orders';
        assert.equal(pathMatches(orders, segments.join('/'), kind, coverage), expected);
        if (segments.length >= 3) assert.equal(pathMatches(orders, segments.join('/'), kind, coverage), false);
        // A group can always reach deeper than two segments.
        assert.equal(pathMatches(orders, groupPath(group), 'collection-group', 'every'), false);
      }),
    );
  });

  it('adding a pattern never uncovers a request, and ALLOW coverage implies DENY reach', () => {
    const requestArb = fc.oneof(
      docArb.map((s) => [s.join('/'), 'document'] as const),
      collectionArb.map((s) => [s.join('/'), 'collection'] as const),
      groupArb.map((g) => [groupPath(g), 'collection-group'] as const),
    );
    fc.assert(
      fc.property(patternsArb, patternArb, requestArb, (patterns, extra, [path, kind]) => {
        const before = compileAll(patterns);
        const after = compileAll([...patterns, extra]);
        for (const coverage of ['every', 'some'] as const) {
          if (pathMatches(before, path, kind, coverage)) assert.ok(pathMatches(after, path, kind, coverage));
        }
        if (pathMatches(before, path, kind, 'every')) assert.ok(pathMatches(before, path, kind, 'some'));
      }),
      { numRuns: 500 },
    );
  });
});

// ---- whole policies: both engines, the reference decision

interface FsTarget {
  databases?: string[];
  collections: string[];
  operations?: FirestoreOperation[];
  serviceAccount?: string;
}
interface MdbTarget {
  databases?: string[];
  role?: string;
}
type Target = { firestore: FsTarget } | { mariadb: MdbTarget };
interface Rule {
  from?: { source: { namespaces: string[] } }[];
  to?: Target[];
}
interface Doc {
  action: 'ALLOW' | 'DENY';
  rules: Rule[];
}

const OPS: FirestoreOperation[] = ['read', 'write', 'admin'];
const FS_DATABASES = ['(default)', 'orders-db', '*', 'orders-*'];
const SAS = ['a@p.iam.gserviceaccount.com', 'b@p.iam.gserviceaccount.com'];
const clean = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

function targetArb(action: Doc['action']): fc.Arbitrary<Target> {
  const allow = action === 'ALLOW';
  const fsTarget = fc
    .record({
      databases: optional(fc.array(fc.constantFrom(...FS_DATABASES), { minLength: 1, maxLength: 2 })),
      collections: patternsArb,
      operations: allow ? fc.subarray(OPS, { minLength: 1 }) : optional(fc.subarray(OPS, { minLength: 1 })),
      serviceAccount: allow ? optional(fc.constantFrom(...SAS)) : fc.constant(undefined),
    })
    .map((t) => ({ firestore: clean(t) as FsTarget }));
  const mdbTarget = fc
    .record({ databases: optional(fc.array(fc.constantFrom('shop', '*'), { minLength: 1, maxLength: 2 })), role: allow ? fc.constantFrom('r1', 'r2') : fc.constant(undefined) })
    .map((t) => ({ mariadb: clean(t) as MdbTarget }));
  return fc.oneof({ arbitrary: fsTarget, weight: 3 }, { arbitrary: mdbTarget, weight: 1 });
}

function ruleArb(action: Doc['action']): fc.Arbitrary<Rule> {
  const from = optional(fc.constantFrom([{ source: { namespaces: ['shop'] } }], [{ source: { namespaces: ['other'] } }]));
  const targets = fc.array(targetArb(action), { minLength: 1, maxLength: 2 });
  return fc.record({ from, to: action === 'ALLOW' ? targets : optional(targets) }).map((r) => clean(r) as Rule);
}
const docArbFor = (action: Doc['action']) => fc.array(ruleArb(action), { minLength: 1, maxLength: 3 }).map((rules): Doc => ({ action, rules }));
const policyArb = fc.array(fc.constantFrom<Doc['action']>('ALLOW', 'DENY').chain(docArbFor), { minLength: 1, maxLength: 4 });

const firestoreRequestArb: fc.Arbitrary<FirestoreRequest> = fc
  .record({
    database: fc.constantFrom('(default)', 'orders-db', 'other'),
    operation: fc.constantFrom(...OPS),
    at: fc.oneof(
      docArb.map((s) => ({ path: s.join('/'), pathKind: 'document' as const })),
      collectionArb.map((s) => ({ path: s.join('/'), pathKind: 'collection' as const })),
      groupArb.map((g) => ({ path: groupPath(g), pathKind: 'collection-group' as const })),
    ),
  })
  .map(({ database, operation, at }): FirestoreRequest => ({ engine: 'firestore', database, operation, ...at }));
const requestArb: fc.Arbitrary<PolicyRequest> = fc.oneof(
  firestoreRequestArb,
  fc.constantFrom<PolicyRequest>({ engine: 'mysql', database: 'shop' }, { engine: 'mysql', database: null }, { engine: 'mysql', database: 'x' }),
);

function compile(docs: readonly Doc[]): CompiledPolicy {
  const text = docs.map((doc, i) => `apiVersion: meshgate.dev/v1alpha1\nkind: AccessPolicy\nmetadata: { name: p${i} }\nspec: ${JSON.stringify(doc)}\n`).join('---\n');
  return loadPolicyDocuments([{ name: 'p.yaml', text }]);
}

const globRef = (patterns: readonly string[], value: string) => patterns.some((p) => segmentRef(p, value));

function targetRef(target: Target, request: PolicyRequest, action: Doc['action']): boolean {
  if ('mariadb' in target) {
    if (request.engine !== 'mysql') return false;
    const dbs = target.mariadb.databases;
    return dbs === undefined || (request.database === null ? dbs.includes('*') : globRef(dbs, request.database));
  }
  if (request.engine !== 'firestore') return false;
  const t = target.firestore;
  return (
    (t.operations === undefined || t.operations.includes(request.operation)) &&
    globRef(t.databases ?? ['(default)'], request.database) &&
    reference(t.collections, request.path, request.pathKind, action === 'ALLOW' ? 'every' : 'some')
  );
}

function decisionRef(docs: readonly Doc[], namespace: string, request: PolicyRequest) {
  for (const action of ['DENY', 'ALLOW'] as const) {
    for (const [d, doc] of docs.entries()) {
      if (doc.action !== action) continue;
      for (const [r, rule] of doc.rules.entries()) {
        if (rule.from !== undefined && !rule.from.some((f) => f.source.namespaces.includes(namespace))) continue;
        const target = rule.to === undefined ? undefined : rule.to.find((t) => targetRef(t, request, action));
        if (rule.to !== undefined && target === undefined) continue;
        const id = `p${d}/${r}`;
        if (action === 'DENY') return { allow: false, ruleId: id, role: null, allowLocalInfile: false, auditParameters: 'none', googleServiceAccount: null, traceQueryText: null, serviceClass: 'default' };
        return {
          allow: true,
          ruleId: id,
          role: target !== undefined && 'mariadb' in target ? (target.mariadb.role ?? null) : null,
          allowLocalInfile: false,
          auditParameters: target !== undefined && 'mariadb' in target ? 'types' : 'none',
          googleServiceAccount: target !== undefined && 'firestore' in target ? (target.firestore.serviceAccount ?? null) : null,
          traceQueryText: null,
          serviceClass: 'default',
        };
      }
    }
  }
  return { allow: false, ruleId: null, role: null, allowLocalInfile: false, auditParameters: 'none', googleServiceAccount: null, traceQueryText: null, serviceClass: 'default' };
}

describe('firestore policy properties', () => {
  const subjects = [subjectFromPrincipal('td/ns/shop/sa/orders'), subjectFromPrincipal('td/ns/web/sa/x')];

  it('evaluate equals the reference decision, across both engines', () => {
    fc.assert(
      fc.property(policyArb, fc.array(fc.tuple(fc.constantFrom(0, 1), requestArb), { minLength: 1, maxLength: 6 }), (docs, calls) => {
        const policy = compile(docs);
        for (const [who, request] of calls) {
          const subject = subjects[who]!;
          const { reason: _reason, ...decision } = policy.evaluate(subject, request);
          assert.deepEqual(decision, { ...decisionRef(docs, subject.namespace ?? '', request), policyVersion: policy.version });
          const { trace, dryRun, ...explained } = policy.explain(subject, request);
          assert.equal(dryRun, null);
          assert.deepEqual(explained, { ...policy.evaluate(subject, request) });
          assert.equal(trace.length, policy.ruleCount);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a DENY naming any document the request can reach always denies', () => {
    const arb = fc.tuple(policyArb, firestoreRequestArb).chain(([docs, request]) => {
      const segments = split(request.path);
      const names: string[] = ['**'];
      if (request.pathKind === 'document' && segments.length > 0) names.push(request.path);
      if (request.pathKind === 'collection') names.push(`${request.path}/*`, `${request.path}/${FRESH}`);
      if (request.pathKind === 'collection-group') names.push(`**/${segments.at(-1)}/*`, [...segments.slice(0, -2), '**'].join('/'));
      const deny = fc.record({ pattern: fc.constantFrom(...names), at: fc.nat(docs.length) });
      return fc.tuple(fc.constant(docs), fc.constant(request), deny);
    });
    fc.assert(
      fc.property(arb, ([docs, request, { pattern, at }]) => {
        const denyDoc: Doc = { action: 'DENY', rules: [{ to: [{ firestore: { databases: [request.database], collections: [pattern] } }] }] };
        const decision = compile([...docs.slice(0, at), denyDoc, ...docs.slice(at)]).evaluate(subjects[0]!, request);
        assert.equal(decision.allow, false);
        assert.notEqual(decision.ruleId, null);
      }),
      { numRuns: 300 },
    );
  });
});
