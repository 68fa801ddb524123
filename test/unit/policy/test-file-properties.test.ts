/**
 * Properties of the policy test file parser: any valid file, however YAML lays it out, reads
 * back as written; one mistake in any case is reported against that case, its field, and a
 * line inside that case.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineCounter, isNode, parseDocument, stringify } from 'yaml';
import { parsePolicyTestSource } from '../../../src/policy/index.ts';

interface Case {
  name: string;
  caller: { principal: string; authMethod?: string; claims?: Record<string, unknown> };
  request: { mariadb: { database?: string | null; direct?: boolean } } | { firestore: { path: string; operation: string; database?: string } };
  expect: { decision: 'ALLOW' | 'DENY'; rule?: string | null; role?: string | null; googleServiceAccount?: string | null; serviceClass?: string; dryRun?: string | null };
}

const PRINCIPALS = ['spiffe://td/ns/shop/sa/orders', 'td/ns/staging/sa/x', 'ci.example/github/acme/shop/env/production'];
const PATHS = ['orders/o1', 'orders', 'orders/o1/items', '**/items', 'orders/o1/**', '**', '/'];
const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const caller = fc.oneof(
  fc.record({ principal: fc.constantFrom(...PRINCIPALS), authMethod: opt(fc.constantFrom('mtls', 'xfcc')) }),
  fc.record({
    principal: fc.constantFrom(...PRINCIPALS),
    authMethod: opt(fc.constant('jwt')),
    claims: opt(fc.dictionary(fc.constantFrom('ref', 'groups', 'org.team', 'n'), fc.oneof(fc.string({ minLength: 1, maxLength: 8 }), fc.integer(), fc.boolean(), fc.array(fc.string({ minLength: 1, maxLength: 4 })).filter((a) => a.length > 0)), { minKeys: 1, maxKeys: 3 })),
  }),
);
const mariadb = fc.record({ database: opt(fc.oneof(fc.constant(null), fc.constantFrom('shop', 'reporting_eu', 'null', 'true'))), direct: opt(fc.boolean()) });
const firestore = fc.record({ path: fc.constantFrom(...PATHS), operation: fc.constantFrom('read', 'write', 'admin'), database: opt(fc.constantFrom('(default)', 'orders-db')) });
const allow = fc.record({ decision: fc.constant('ALLOW' as const), rule: opt(fc.constantFrom('orders/rw', 'p/0')), serviceClass: opt(fc.constantFrom('default', 'batch')), dryRun: opt(fc.constantFrom('watch/0', null)) });
const deny = fc.record({ decision: fc.constant('DENY' as const), rule: opt(fc.constantFrom('deny-staging/0', 'default-deny', null)), serviceClass: opt(fc.constant('default')), dryRun: opt(fc.constantFrom('watch/0', null)) });

const oneCase = fc.oneof(
  fc.record({ caller, request: fc.record({ mariadb }), expect: fc.oneof(allow.chain((e) => fc.record({ role: opt(fc.constantFrom('shop_writer', null)) }).map((r) => ({ ...e, ...r }))), deny.map((e) => ({ ...e, role: null }))) }),
  fc.record({ caller, request: fc.record({ firestore }), expect: fc.oneof(allow.chain((e) => fc.record({ googleServiceAccount: opt(fc.constant('a@p-1.iam.gserviceaccount.com')) }).map((g) => ({ ...e, ...g }))), deny) }),
);

/** Drops the undefined fields fast-check leaves, as a writer would leave them out. */
function clean<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

const files = fc
  .array(oneCase, { minLength: 1, maxLength: 6 })
  .map((list) => clean(list.map((c, i): Case => ({ name: `case ${i}`, ...c }) as Case)));
// Block style, flow style, and a mix: line numbers must follow the layout.
const layout = fc.constantFrom<NonNullable<Parameters<typeof stringify>[2]>>({}, { collectionStyle: 'flow' }, { indent: 4 }, { flowCollectionPadding: false, collectionStyle: 'flow', lineWidth: 40 });

/** The first and last line of each case's node in `text`, read independently of the parser under test. */
function caseLines(text: string): [number, number][] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  const out: [number, number][] = [];
  for (let i = 0; ; i += 1) {
    const node = doc.getIn(['tests', i], true);
    if (!isNode(node) || !node.range) return out;
    out.push([lineCounter.linePos(node.range[0]).line, lineCounter.linePos(node.range[1]).line]);
  }
}

describe('policy test files: properties', () => {
  it('any valid file reads back as written', () => {
    fc.assert(
      fc.property(files, layout, (cases, options) => {
        const text = stringify({ tests: cases }, null, options);
        const parsed = parsePolicyTestSource({ name: 'f.yaml', text });
        assert.deepEqual(parsed.problems, [], text);
        assert.equal(parsed.cases.length, cases.length);
        parsed.cases.forEach((got, i) => {
          const want = cases[i]!;
          assert.equal(got.name, want.name);
          assert.equal(got.index, i);
          const { rule, ...rest } = want.expect;
          assert.deepEqual(got.expect, rule === undefined ? rest : { ...rest, rule: rule === 'default-deny' ? null : rule });
          const claimed = want.caller.claims !== undefined;
          assert.equal(got.subject.authMethod, want.caller.authMethod ?? (claimed ? 'jwt' : 'mtls'));
          assert.deepEqual(got.subject.claims, got.subject.authMethod === 'jwt' ? (want.caller.claims ?? {}) : undefined);
          if ('mariadb' in want.request) {
            assert.deepEqual(got.request, { engine: 'mysql', database: want.request.mariadb.database ?? null, ...(want.request.mariadb.direct === true ? { direct: true } : {}) });
          } else {
            assert.equal(got.request.engine, 'firestore');
            assert.equal(got.request.engine === 'firestore' && got.request.path, want.request.firestore.path === '/' ? '' : want.request.firestore.path);
          }
        });
        // Case lines ascend: each case is reported where it starts.
        const lines = parsed.cases.map((c) => c.line ?? 0);
        assert.deepEqual([...lines].sort((a, b) => a - b), lines);
      }),
      { numRuns: 300 },
    );
  });

  const mutations: [string, (c: Case) => void, RegExp][] = [
    ['an unknown field in expect', (c) => Object.assign(c.expect, { extra: 1 }), /expect\.extra: unknown field; allowed here: /],
    ['an unknown field in the caller', (c) => Object.assign(c.caller, { principals: 'x' }), /caller\.principals: unknown field; allowed here: principal, authMethod, claims/],
    ['a decision in lower case', (c) => Object.assign(c.expect, { decision: 'allow' }), /expect\.decision: expected "ALLOW" or "DENY", got the string "allow"/],
    ['no caller', (c) => Reflect.deleteProperty(c, 'caller'), /caller: required/],
    ['a principal that is no SPIFFE ID', (c) => Object.assign(c.caller, { principal: 'Not A Principal' }), /caller\.principal: "Not A Principal" is not a SPIFFE ID/],
  ];

  for (const [name, mutate, message] of mutations) {
    it(`${name} in any case is reported against that case, field and a line inside it`, () => {
      fc.assert(
        fc.property(files, layout, fc.nat(), (cases, options, pick) => {
          const k = pick % cases.length;
          const broken = clean(cases);
          mutate(broken[k]!);
          const text = stringify({ tests: broken }, null, options);
          const { problems } = parsePolicyTestSource({ name: 'f.yaml', text });
          assert.equal(problems.length, 1, `${text}\n${problems.join('\n')}`);
          const match = /^f\.yaml: tests\[(\d+)\] "([^"]*)": (.*) \(line (\d+)\)$/.exec(problems[0]!);
          assert.ok(match, problems[0]);
          assert.equal(Number(match[1]), k);
          assert.equal(match[2], `case ${k}`);
          assert.match(match[3]!, message);
          // The line lies within case k.
          const line = Number(match[4]);
          const [start, end] = caseLines(text)[k]!;
          assert.ok(line >= start && line <= end, `line ${line} outside case ${k} (lines ${start}-${end})\n${text}`);
        }),
        { numRuns: 150 },
      );
    });
  }
});
