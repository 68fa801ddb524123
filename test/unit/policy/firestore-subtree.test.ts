/**
 * Subtree requests (`PARENT/**`: every document beneath PARENT, any collection at any depth,
 * as recursiveDelete and a listing without collection id ask): examples of what covers
 * them and what denies them, the reasons a refusal gives, malformed forms, and properties
 * against references that enumerate concrete documents.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { compilePathPattern, OPEN_ID, pathMatches, uncoveredExample, type Coverage } from '../../../src/policy/firestore-path.ts';
import { firestorePathKind, firestoreRequestProblem } from '../../../src/policy/firestore-request.ts';
import { loadPolicyDocuments } from '../../../src/policy/loader.ts';
import { subjectFromPrincipal } from '../../../src/policy/subject.ts';
import type { CompiledPolicy, FirestoreOperation, FirestoreRequest } from '../../../src/policy/types.ts';

const HEAD = 'apiVersion: meshgate.dev/v1alpha1\nkind: AccessPolicy\n';
const ORDERS = subjectFromPrincipal('spiffe://cluster.local/ns/shop/sa/orders');

function policyDoc(name: string, action: 'ALLOW' | 'DENY', targets: readonly Record<string, unknown>[]): string {
  const rules = targets.map((t) => `    - { to: [{ firestore: ${JSON.stringify(t)} }] }\n`).join('');
  return `${HEAD}metadata: { name: ${name} }\nspec:\n  action: ${action}\n  rules:\n${rules}`;
}
const allow = (name: string, collections: string[], operations: FirestoreOperation[] = ['read', 'write', 'admin']) => policyDoc(name, 'ALLOW', [{ collections, operations }]);
const deny = (name: string, collections: string[], extra: Record<string, unknown> = {}) => policyDoc(name, 'DENY', [{ collections, ...extra }]);
const load = (...docs: string[]): CompiledPolicy => loadPolicyDocuments(docs.map((text, i) => ({ name: `p${i}.yaml`, text })));
const subtree = (path: string, operation: FirestoreOperation = 'read'): FirestoreRequest => ({ engine: 'firestore', database: '(default)', path, pathKind: 'subtree', operation });
const document = (path: string, operation: FirestoreOperation = 'read'): FirestoreRequest => ({ engine: 'firestore', database: '(default)', path, pathKind: 'document', operation });

describe('subtree requests: what an ALLOW must cover', () => {
  // [collections of one ALLOW target, subtree path, covered]
  const cases: [string[], string, boolean][] = [
    [['orders/o1/**'], 'orders/o1/**', true],
    [['orders/o1/*/**'], 'orders/o1/**', true], // strictly beneath: all a subtree reaches
    [['orders/**'], 'orders/o1/**', true],
    [['orders/*/**'], 'orders/o1/**', true],
    [['**'], 'orders/o1/**', true],
    [['**'], '**', true],
    [['*/**'], '**', true],
    [['*/*/**'], '**', true],
    [['orders/**'], '**', false], // the database holds other collections
    [['orders/o1/items/**'], 'orders/o1/**', false], // other subcollections
    [['orders/o1/*/*'], 'orders/o1/**', false], // one level only
    [['orders/o1/*/*', 'orders/o1/*/*/*/*/**'], 'orders/o1/**', true],
    [['orders/o1/*/*', 'orders/o1/*/*/*/*'], 'orders/o1/**', false], // three levels down is not named
    [['**/items/*'], 'orders/o1/**', false],
    [['orders/o2/**'], 'orders/o1/**', false],
    [['orders/o1-*/**'], 'orders/o1/**', false],
    [['orders/o*/**'], 'orders/o1/**', true],
    [['*/o1/**'], 'orders/o1/**', true],
    [['orders/o1/**'], 'orders/o1/items/i1/**', true],
    [['orders/o1/**/x'], 'orders/o1/**', false],
  ];
  for (const [collections, path, covered] of cases) {
    it(`${collections.join(' + ')} ${covered ? 'covers' : 'does not cover'} ${path}`, () => {
      const decision = load(allow('a', collections)).evaluate(ORDERS, subtree(path));
      assert.equal(decision.allow, covered, decision.reason);
      assert.equal(pathMatches(collections.map(compilePathPattern), path, 'subtree', 'every'), covered);
    });
  }

  it('patterns of different targets or rules are not combined', () => {
    const twoRules = load(allow('a', ['orders/o1/*/*']), allow('b', ['orders/o1/*/*/*/*/**']));
    assert.equal(twoRules.evaluate(ORDERS, subtree('orders/o1/**')).allow, false);
  });

  it('the operation must be granted: read for a query or listing, admin for a partition', () => {
    const readOnly = load(allow('a', ['orders/**'], ['read']));
    assert.equal(readOnly.evaluate(ORDERS, subtree('orders/o1/**')).allow, true);
    assert.equal(readOnly.evaluate(ORDERS, subtree('orders/o1/**', 'admin')).allow, false);
  });
});

describe('subtree requests: a DENY matching anything beneath refuses all of it', () => {
  const everything = allow('all', ['**']);
  // [collections of the DENY, subtree path, blocks]
  const cases: [string[], string, boolean][] = [
    [['orders/o1/secret/*'], 'orders/o1/**', true],
    [['orders/o1/a/b/secret/*'], 'orders/o1/**', true], // deeper
    [['orders/*/items/*'], 'orders/o1/**', true],
    [['**/secret-*'], 'orders/o1/**', true],
    [['**/x/*'], 'orders/o1/**', true],
    [['orders/**'], 'orders/o1/**', true],
    [['orders/o1/**'], 'orders/o1/**', true],
    [['**'], 'orders/o1/**', true],
    [['secrets/**'], '**', true], // the whole database reaches secrets
    [['orders/o2/**'], 'orders/o1/**', false],
    [['orders/o1'], 'orders/o1/**', false], // the parent itself is not beneath it
    [['orders/*'], 'orders/o1/**', false],
    [['orders/o1/items/i1/**'], 'orders/o1/items/i2/**', false],
    [['orders/o1/items/i1/**'], 'orders/o1/**', true],
  ];
  for (const [collections, path, blocks] of cases) {
    it(`DENY ${collections.join(', ')} ${blocks ? 'blocks' : 'spares'} ${path}`, () => {
      const decision = load(everything, deny('d', collections)).evaluate(ORDERS, subtree(path));
      assert.equal(decision.allow, !blocks, decision.reason);
      assert.equal(decision.ruleId, blocks ? 'd/0' : 'all/0');
      assert.equal(pathMatches(collections.map(compilePathPattern), path, 'subtree', 'some'), blocks);
    });
  }

  it('a DENY on other operations or another database leaves a read of the subtree alone', () => {
    assert.equal(load(everything, deny('d', ['orders/o1/secret/*'], { operations: ['write'] })).evaluate(ORDERS, subtree('orders/o1/**')).allow, true);
    assert.equal(load(everything, deny('d', ['**'], { databases: ['other-db'] })).evaluate(ORDERS, subtree('orders/o1/**')).allow, true);
  });
});

describe('subtree refusals say which rule form allows them', () => {
  it('no ALLOW: the reason names the pattern that would cover the subtree', () => {
    const decision = load(allow('a', ['orders/*/items/*'])).evaluate(ORDERS, subtree('orders/o1/**'));
    assert.equal(decision.ruleId, null);
    assert.match(decision.reason, /for Firestore read on subtree beneath orders\/o1 in database \(default\)/);
    assert.match(decision.reason, /every collection at any depth needs one ALLOW target whose collections cover all of it, such as "orders\/o1\/\*\*" or "\*\*"/);
    assert.match(decision.reason, /no DENY rule that matches anything beneath it/);
    const deep = load(allow('a', ['x/*'])).evaluate(ORDERS, subtree('orders/o1/items/i1/**'));
    assert.match(deep.reason, /such as "orders\/o1\/items\/i1\/\*\*" or "orders\/\*\*" or "\*\*"/);
    assert.match(load(allow('a', ['x/*'])).evaluate(ORDERS, subtree('**')).reason, /beneath the database root.*such as "\*\*",/);
  });

  it('a DENY: the reason names the rule and says that anything beneath counts', () => {
    const decision = load(allow('all', ['**']), deny('d', ['orders/*/secret/*'])).evaluate(ORDERS, subtree('orders/o1/**'));
    assert.equal(decision.ruleId, 'd/0');
    assert.match(decision.reason, /^denied by rule d\/0 \(DENY for every caller on Firestore collections orders\/\*\/secret\/\* in databases \(default\)\); it matches a document of the subtree beneath orders\/o1/);
    assert.match(decision.reason, /no DENY rule that matches anything beneath it$/);
  });

  it('explain shows a reachable document the ALLOW leaves out, and agrees with evaluate', () => {
    const policy = load(allow('a', ['orders/o1/*/*']));
    const explained = policy.explain(ORDERS, subtree('orders/o1/**'));
    assert.equal(explained.reason, policy.evaluate(ORDERS, subtree('orders/o1/**')).reason);
    assert.match(explained.trace[0]!.why, /collections orders\/o1\/\*\/\* do not cover the subtree beneath orders\/o1: it can reach orders\/o1\/\{any\}\/\{any\}\/\{any\}\/\{any\}/);
  });
});

describe('subtree request shapes', () => {
  it('firestorePathKind: a last "**" is a subtree, "**" alone the whole database', () => {
    assert.deepEqual(['**', 'orders/o1/**', 'a/b/**/c'].map(firestorePathKind), ['subtree', 'subtree', 'collection-group']);
  });

  for (const [path, reason] of [
    ['orders/**', /not a subtree/], // the parent is a collection
    ['orders/o1/**/**', /not a subtree/],
    ['**/**', /not a subtree/],
    ['**/o1/**', /not a subtree/], // an id "**" in the parent
    ['orders/o1', /not a subtree/],
    ['orders//**', /empty segment/],
    ['./o1/**', /"\." and "\.\."/],
    ['', /empty segment/],
  ] as const) {
    it(`malformed: ${JSON.stringify(path)} is denied before any rule`, () => {
      const decision = load(allow('a', ['**'])).evaluate(ORDERS, subtree(path));
      assert.equal(decision.allow, false);
      assert.equal(decision.ruleId, null);
      assert.match(decision.reason, /^malformed Firestore request, denied: /);
      assert.match(decision.reason, reason);
      assert.notEqual(firestoreRequestProblem(subtree(path)), null);
    });
  }

  it('a subtree as deep as Firestore allows is well formed', () => {
    assert.equal(firestoreRequestProblem(subtree(`${'a/'.repeat(100)}**`)), null);
    assert.notEqual(firestoreRequestProblem(subtree(`${'a/'.repeat(102)}**`)), null);
  });
});

describe('"**" in policy patterns: malformed forms fail at load with file, field and line', () => {
  const problem = (pattern: string): string => {
    const text = `${HEAD}metadata: { name: p }\nspec:\n  action: ALLOW\n  rules:\n    - to:\n        - firestore:\n            collections: ["orders/*", ${JSON.stringify(pattern)}]\n            operations: [read]\n`;
    try {
      loadPolicyDocuments([{ name: 'policy/fs.yaml', text }]);
    } catch (error) {
      assert.ok(isMeshgateError(error));
      assert.equal(error.code, 'MG_POLICY_INVALID');
      return error.message;
    }
    return assert.fail(`${pattern} was accepted`);
  };
  for (const pattern of ['orders/o1/***', 'orders/o1**', 'orders/**o1', 'orders/o1/**/', '/**', 'orders/*/**x', 'orders/**/**x']) {
    it(`refuses ${JSON.stringify(pattern)}`, () => {
      const message = problem(pattern);
      assert.match(message, /policy\/fs\.yaml doc 1: spec\.rules\[0\]\.to\[0\]\.firestore\.collections\[1\]: /);
      assert.match(message, /\(line 9\)/);
    });
  }
});

// ---- properties against references over concrete documents

// Ids meet every pattern segment below ('a*' by 'a', '*b' by 'ab'); 'zz' meets only '*' and '**'.
const IDS = ['a', 'ab', 'items', 'zz'];
const FRESH = 'zz';
const SEGMENTS = ['a', 'items', 'a*', '*b', '*', '*', '**', '**'];
const MAX_PAIRS = 8;
const patternArb = fc
  .array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 5 })
  .map((s) => (s.includes('**') || s.length % 2 === 0 ? s : [...s, '*']).join('/'));
const patternsArb = fc.array(patternArb, { minLength: 1, maxLength: 3 });
const idArb = fc.constantFrom(...IDS);
const pairsArb = (min: number, max: number) => fc.integer({ min, max }).chain((k) => fc.array(idArb, { minLength: 2 * k, maxLength: 2 * k }));
const parentArb = pairsArb(0, 2);
const subtreePath = (parent: readonly string[]) => [...parent, '**'].join('/');

function segmentRef(pattern: string, id: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return id.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith('*')) return id.endsWith(pattern.slice(1));
  return pattern === id;
}
/** Textbook recursion; a null id matches a segment when some id of IDS would. */
function matchRef(pattern: readonly string[], path: readonly (string | null)[], p = 0, s = 0): boolean {
  if (p === pattern.length) return s === path.length;
  if (pattern[p] === '**') return matchRef(pattern, path, p + 1, s) || (s < path.length && matchRef(pattern, path, p, s + 1));
  if (s >= path.length) return false;
  const id = path[s]!;
  const ok = id === null ? IDS.some((candidate) => segmentRef(pattern[p]!, candidate)) : segmentRef(pattern[p]!, id);
  return ok && matchRef(pattern, path, p + 1, s + 1);
}
const anyRef = (patterns: readonly string[], path: readonly (string | null)[]) => patterns.some((p) => matchRef(p.split('/'), path));

/** The semantics as docs/policy-firestore.md writes them: every / some document PARENT/c1/d1/.../ck/dk, k >= 1. */
function subtreeRef(patterns: readonly string[], parent: readonly string[], coverage: Coverage): boolean {
  const depths = Array.from({ length: MAX_PAIRS }, (_, i) => i + 1);
  return coverage === 'every'
    ? depths.every((k) => anyRef(patterns, [...parent, ...Array<string>(2 * k).fill(FRESH)]))
    : depths.some((k) => anyRef(patterns, [...parent, ...Array<null>(2 * k).fill(null)]));
}

/** Every concrete document beneath `parent` with up to `pairs` collection/document pairs. */
function concreteBeneath(parent: readonly string[], pairs: number): string[][] {
  const out: string[][] = [];
  let layer: string[][] = [[...parent]];
  for (let k = 1; k <= pairs; k += 1) {
    layer = layer.flatMap((w) => IDS.flatMap((c) => IDS.map((d) => [...w, c, d])));
    out.push(...layer);
  }
  return out;
}

describe('subtree properties', () => {
  it('the matcher equals the reference, for ALLOW and DENY (every depth up to 8 pairs)', () => {
    fc.assert(
      fc.property(patternsArb, parentArb, (patterns, parent) => {
        for (const coverage of ['every', 'some'] as const) {
          assert.equal(pathMatches(patterns.map(compilePathPattern), subtreePath(parent), 'subtree', coverage), subtreeRef(patterns, parent, coverage), coverage);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a covered subtree covers every concrete document beneath; a DENY reaching one applies', () => {
    fc.assert(
      fc.property(patternsArb, parentArb, fc.array(pairsArb(1, 5), { minLength: 1, maxLength: 10 }), (patterns, parent, below) => {
        const compiled = patterns.map(compilePathPattern);
        const covered = pathMatches(compiled, subtreePath(parent), 'subtree', 'every');
        const touched = pathMatches(compiled, subtreePath(parent), 'subtree', 'some');
        for (const extension of below) {
          const hit = anyRef(patterns, [...parent, ...extension]);
          if (covered) assert.ok(hit, `covered, yet ${[...parent, ...extension].join('/')} is not`);
          if (hit) assert.ok(touched, `${[...parent, ...extension].join('/')} matches, yet the DENY does not apply`);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('an uncovered subtree comes with a document beneath it that no pattern matches', () => {
    fc.assert(
      fc.property(patternsArb, parentArb, (patterns, parent) => {
        const example = uncoveredExample(patterns.map(compilePathPattern), subtreePath(parent), 'subtree');
        assert.equal(example === null, pathMatches(patterns.map(compilePathPattern), subtreePath(parent), 'subtree', 'every'));
        if (example === null) return;
        const segments = example.split('/').map((s) => (s === OPEN_ID ? FRESH : s));
        assert.deepEqual(segments.slice(0, parent.length), parent);
        assert.ok(segments.length >= parent.length + 2 && segments.length % 2 === 0, example);
        assert.equal(anyRef(patterns, segments), false, `${example} is matched after all`);
      }),
      { numRuns: 1000 },
    );
  });

  // One ALLOW target plus DENY rules, operations and databases included: the subtree is
  // allowed exactly when every concrete document beneath is. Parents of at most one pair and
  // patterns of at most six segments decide within three pairs below the parent.
  const denyArb = fc.record({ collections: patternsArb, operations: fc.option(fc.subarray<FirestoreOperation>(['read', 'write', 'admin'], { minLength: 1 }), { nil: undefined }) });
  const policyArb = fc.record({ grant: patternsArb, operations: fc.subarray<FirestoreOperation>(['read', 'write', 'admin'], { minLength: 1 }), denies: fc.array(denyArb, { maxLength: 3 }) });
  const compile = (p: { grant: string[]; operations: FirestoreOperation[]; denies: { collections: string[]; operations?: FirestoreOperation[] | undefined }[] }) =>
    load(
      policyDoc('a', 'ALLOW', [{ collections: p.grant, operations: p.operations }]),
      ...(p.denies.length === 0 ? [] : [policyDoc('d', 'DENY', p.denies.map((d) => (d.operations === undefined ? { collections: d.collections } : d)))]),
    );

  it('a subtree is allowed iff every concrete document beneath it is allowed', () => {
    fc.assert(
      fc.property(policyArb, pairsArb(0, 1), fc.constantFrom<FirestoreOperation>('read', 'admin'), (p, parent, operation) => {
        const policy = compile(p);
        const whole = policy.evaluate(ORDERS, subtree(subtreePath(parent), operation)).allow;
        const each = concreteBeneath(parent, 3).every((d) => policy.evaluate(ORDERS, document(d.join('/'), operation)).allow);
        assert.equal(whole, each);
      }),
      { numRuns: 150 },
    );
  });

  it('a subtree grant never allows a document a DENY rule matches', () => {
    fc.assert(
      fc.property(policyArb, parentArb, fc.array(pairsArb(1, 4), { minLength: 1, maxLength: 20 }), (p, parent, below) => {
        const policy = compile(p);
        if (!policy.evaluate(ORDERS, subtree(subtreePath(parent))).allow) return;
        for (const extension of below) {
          const path = [...parent, ...extension].join('/');
          const decision = policy.evaluate(ORDERS, document(path));
          assert.ok(decision.allow, `the subtree is allowed, yet ${path} is refused: ${decision.reason}`);
          for (const d of p.denies) {
            if (d.operations === undefined || d.operations.includes('read')) assert.equal(anyRef(d.collections, path.split('/')), false);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('adding a DENY that names any document beneath refuses the subtree, wherever it sits', () => {
    fc.assert(
      fc.property(policyArb, parentArb, pairsArb(1, 4), fc.boolean(), (p, parent, extension, asPrefix) => {
        const named = [...parent, ...extension];
        const pattern = asPrefix ? [...named.slice(0, parent.length + 2), '**'].join('/') : named.join('/');
        const policy = compile({ ...p, grant: ['**'], denies: [...p.denies, { collections: [pattern] }] });
        const decision = policy.evaluate(ORDERS, subtree(subtreePath(parent)));
        assert.equal(decision.allow, false);
        assert.match(decision.ruleId ?? '', /^d\//);
      }),
      { numRuns: 300 },
    );
  });
});
