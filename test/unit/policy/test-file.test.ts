/** Policy test files: what a valid case becomes, and what each mistake is called (file, case, field, line). */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { loadPolicyTests, parsePolicyTestSource, type PolicyTestCase } from '../../../src/policy/index.ts';

const FILE = 'tests/cases.yaml';

function parse(text: string) {
  return parsePolicyTestSource({ name: FILE, text });
}

function only(text: string): string {
  const { problems } = parse(text);
  assert.equal(problems.length, 1, `expected one problem, got:\n${problems.join('\n')}`);
  return problems[0]!;
}

const VALID = `# comment
tests:
  - name: orders writes shop
    caller: { principal: spiffe://cluster.local/ns/shop/sa/orders }
    request: { mariadb: { database: shop } }
    expect: { decision: ALLOW, rule: orders/rw, role: shop_writer, serviceClass: default }

  - name: no database, Istio form, jwt by claims
    caller:
      principal: cluster.local/ns/ci/sa/deploy
      claims: { ref: refs/heads/main, run_attempt: 2, protected: true, groups: [eng, ops] }
    request: { mariadb: { database: null, direct: true } }
    expect: { decision: DENY, rule: default-deny, role: null, dryRun: watch/0 }

  - name: firestore root
    caller: { principal: td/ns/a/sa/b, authMethod: xfcc }
    request: { firestore: { path: /, operation: admin, database: orders-db } }
    expect: { decision: DENY, rule: null, googleServiceAccount: null }
`;

describe('policy test files: valid cases', () => {
  it('become subjects, requests and expectations, with the line of each case', () => {
    const { cases, problems } = parse(VALID);
    assert.deepEqual(problems, []);
    assert.deepEqual(
      cases.map((c: PolicyTestCase) => [c.index, c.line, c.name]),
      [
        [0, 3, 'orders writes shop'],
        [1, 8, 'no database, Istio form, jwt by claims'],
        [2, 15, 'firestore root'],
      ],
    );
    const [writes, none, root] = cases as [PolicyTestCase, PolicyTestCase, PolicyTestCase];
    assert.equal(writes.subject.principal, 'cluster.local/ns/shop/sa/orders');
    assert.equal(writes.subject.authMethod, 'mtls');
    assert.equal(writes.subject.claims, undefined);
    assert.deepEqual(writes.request, { engine: 'mysql', database: 'shop' });
    assert.deepEqual(writes.expect, { decision: 'ALLOW', rule: 'orders/rw', role: 'shop_writer', serviceClass: 'default' });

    assert.equal(none.subject.spiffeId, 'spiffe://cluster.local/ns/ci/sa/deploy');
    assert.equal(none.subject.namespace, 'ci');
    assert.equal(none.subject.authMethod, 'jwt');
    assert.deepEqual(none.subject.claims, { ref: 'refs/heads/main', run_attempt: 2, protected: true, groups: ['eng', 'ops'] });
    assert.deepEqual(none.request, { engine: 'mysql', database: null, direct: true });
    assert.deepEqual(none.expect, { decision: 'DENY', rule: null, role: null, dryRun: 'watch/0' });

    assert.equal(root.subject.authMethod, 'xfcc');
    assert.deepEqual(root.request, { engine: 'firestore', database: 'orders-db', path: '', pathKind: 'document', operation: 'admin' });
    assert.deepEqual(root.expect, { decision: 'DENY', rule: null, googleServiceAccount: null });
  });

  it('a Firestore request without a database asks about (default)', () => {
    const { cases } = parse(`tests:
  - name: c
    caller: { principal: td/ns/a/sa/b }
    request: { firestore: { path: "orders/o1/**", operation: read } }
    expect: { decision: DENY }
`);
    assert.deepEqual(cases[0]?.request, { engine: 'firestore', database: '(default)', path: 'orders/o1/**', pathKind: 'subtree', operation: 'read' });
  });
});

const CASE = (body: string) => `tests:
  - name: first
    caller: { principal: td/ns/a/sa/b }
    request: { mariadb: { database: shop } }
    expect: { decision: DENY }
  - name: second
${body}`;

describe('policy test files: each mistake names file, case, field and line', () => {
  const cases: [string, string, string][] = [
    [
      'an unknown field, with the fields allowed there',
      CASE('    caller: { principal: td/ns/a/sa/b }\n    request: { mariadb: { database: shop } }\n    expect: { decision: DENY, rol: x }\n'),
      `${FILE}: tests[1] "second": expect.rol: unknown field; allowed here: decision, rule, role, googleServiceAccount, serviceClass, dryRun (line 9)`,
    ],
    [
      'a decision spelt in lower case',
      CASE('    caller: { principal: td/ns/a/sa/b }\n    request: { mariadb: {} }\n    expect:\n      decision: deny\n'),
      `${FILE}: tests[1] "second": expect.decision: expected "ALLOW" or "DENY", got the string "deny" (line 10)`,
    ],
    [
      'a missing caller',
      CASE('    request: { mariadb: {} }\n    expect: { decision: DENY }\n'),
      `${FILE}: tests[1] "second": caller: required (line 6)`,
    ],
    [
      'an unknown auth method',
      CASE('    caller: { principal: td/ns/a/sa/b, authMethod: JWT }\n    request: { mariadb: {} }\n    expect: { decision: DENY }\n'),
      `${FILE}: tests[1] "second": caller.authMethod: expected "mtls", "jwt" or "xfcc", got the string "JWT" (line 7)`,
    ],
    [
      'a Firestore method instead of an operation class',
      CASE('    caller: { principal: td/ns/a/sa/b }\n    request: { firestore: { path: a/b, operation: get } }\n    expect: { decision: DENY }\n'),
      `${FILE}: tests[1] "second": request.firestore.operation: expected "read", "write" or "admin", got the string "get"; the classes are read (get, list, query, aggregate, listen), write (create, update, delete) and admin (list collection ids, partition) (line 8)`,
    ],
    [
      'both engines in one request',
      CASE('    caller: { principal: td/ns/a/sa/b }\n    request:\n      mariadb: {}\n      firestore: { path: a, operation: read }\n    expect: { decision: DENY }\n'),
      `${FILE}: tests[1] "second": request: names both mariadb and firestore: one case asks one thing (line 9)`,
    ],
    [
      'no engine in a request',
      CASE('    caller: { principal: td/ns/a/sa/b }\n    request: {}\n    expect: { decision: DENY }\n'),
      `${FILE}: tests[1] "second": request: names no request: give mariadb or firestore (line 8)`,
    ],
    [
      'an ALLOW by default deny',
      CASE('    caller: { principal: td/ns/a/sa/b }\n    request: { mariadb: {} }\n    expect: { decision: ALLOW, rule: default-deny }\n'),
      `${FILE}: tests[1] "second": expect.rule: an ALLOW is always decided by a rule; name it (<policy>/<rule id or index>) (line 9)`,
    ],
    [
      'a role expected of a Firestore request',
      CASE('    caller: { principal: td/ns/a/sa/b }\n    request: { firestore: { path: a/b, operation: read } }\n    expect: { decision: ALLOW, rule: p/0, role: shop_reader }\n'),
      `${FILE}: tests[1] "second": expect.role: a Firestore request is granted a Google service account, not a MariaDB role: expect googleServiceAccount (line 9)`,
    ],
    [
      'a principal that is no SPIFFE ID, at its own line',
      CASE('    caller:\n      authMethod: mtls\n      principal: "spiffe://Shop/ns/a"\n    request: { mariadb: {} }\n    expect: { decision: DENY }\n'),
      `${FILE}: tests[1] "second": caller.principal: "spiffe://Shop/ns/a" is not a SPIFFE ID or Istio principal: the trust domain must be lower-case letters, digits, ".", "-" or "_" (expected spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>) (line 9)`,
    ],
    [
      'claims on an mTLS caller',
      CASE('    caller: { principal: td/ns/a/sa/b, authMethod: mtls, claims: { a: b } }\n    request: { mariadb: {} }\n    expect: { decision: DENY }\n'),
      `${FILE}: tests[1] "second": caller.claims: only jwt identities carry claims, but caller.authMethod is mtls (line 7)`,
    ],
    [
      'a malformed Firestore path',
      CASE('    caller: { principal: td/ns/a/sa/b }\n    request: { firestore: { path: "a//b", operation: read } }\n    expect: { decision: DENY }\n'),
      `${FILE}: tests[1] "second": request.firestore.path: path "a//b" has an empty segment (line 8)`,
    ],
    [
      'a claim named __proto__',
      CASE('    caller: { principal: td/ns/a/sa/b, claims: { __proto__: x } }\n    request: { mariadb: {} }\n    expect: { decision: DENY }\n'),
      `${FILE}: tests[1] "second": caller.claims.__proto__: "__proto__" is not a claim name (line 7)`,
    ],
    [
      'a case without a name',
      CASE('    caller: { principal: td/ns/a/sa/b }\n    request: { mariadb: {} }\n    expect: { decision: DENY }\n').replace('  - name: second\n', '  -\n'),
      `${FILE}: tests[1]: name: required (line 7)`,
    ],
    ['an empty list of cases', 'tests: []\n', `${FILE}: tests: must not be empty (line 1)`],
    ['a list instead of a mapping', '- name: a\n', `${FILE}: expected a mapping, got a list (line 1)`],
    ['a file of comments only', '# nothing yet\n', `${FILE}: holds no test cases; write a \`tests:\` list of cases`],
    ['two YAML documents', 'tests: []\n---\ntests: []\n', `${FILE}: holds several YAML documents; put every case in one \`tests:\` list`],
  ];
  for (const [name, text, expected] of cases) {
    it(name, () => {
      assert.equal(only(text), expected);
    });
  }

  it('an unknown top-level field is named with what is allowed', () => {
    const { problems } = parse('tests: []\ncases: []\n');
    assert.deepEqual(problems, [`${FILE}: tests: must not be empty (line 1)`, `${FILE}: cases: unknown field; allowed here: tests (line 2)`]);
  });

  it('a YAML syntax error names file, line and column', () => {
    assert.match(only('tests:\n  - name: "open\n'), /^tests\/cases\.yaml: YAML syntax error: .*line \d+, column \d+/);
  });

  it('every case is checked: problems of several cases are all reported', () => {
    const { problems } = parse(`tests:
  - { name: a, caller: { principal: x }, request: { mariadb: {} }, expect: { decision: DENY } }
  - { name: b, caller: { principal: td/ns/a/sa/b }, request: { mariadb: {} }, expect: { decision: NO } }
  - { name: c, caller: { principal: td/ns/a/sa/b }, request: { mariadb: {} }, expect: { decision: DENY } }
`);
    assert.equal(problems.length, 1, 'zod stops the file at shape errors; the principal is checked once the shape holds');
    assert.match(problems[0]!, /tests\[1\] "b": expect\.decision: .* \(line 3\)$/);
  });
});

describe('loadPolicyTests: several files', () => {
  const one = (name: string) => `tests:\n  - name: ${name}\n    caller: { principal: td/ns/a/sa/b }\n    request: { mariadb: {} }\n    expect: { decision: DENY }\n`;

  it('keeps the cases of every file in order', () => {
    const cases = loadPolicyTests([
      { name: 'a.yaml', text: one('first') },
      { name: 'b.yaml', text: one('second') },
    ]);
    assert.deepEqual(cases.map((c) => `${c.file}:${c.name}`), ['a.yaml:first', 'b.yaml:second']);
  });

  it('refuses a case name used twice, naming both places', () => {
    assert.throws(() => loadPolicyTests([{ name: 'a.yaml', text: one('same') }, { name: 'b.yaml', text: one('same') }]), {
      code: 'MG_POLICY_TEST_INVALID',
      message: 'b.yaml: tests[0] "same": name: already used by a.yaml tests[0] (line 2); case names must be unique (line 2)',
    });
  });

  it('collects the problems of every file, at most 20 shown', () => {
    const bad = `tests:\n${Array.from({ length: 25 }, (_, i) => `  - { name: c${i}, caller: { principal: td/ns/a/sa/b }, request: { mariadb: {} }, expect: { decision: maybe } }`).join('\n')}\n`;
    assert.throws(() => loadPolicyTests([{ name: 'a.yaml', text: bad }, { name: 'b.yaml', text: '# empty\n' }]), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'MG_POLICY_TEST_INVALID');
      const lines = error.message.split('\n');
      assert.equal(lines[0], '26 problems in the policy tests:');
      assert.equal(lines.length, 1 + 20 + 1);
      assert.equal(lines.at(-1), '  ... and 6 more');
      assert.match(lines[1]!, /^ {2}a\.yaml: tests\[0\] "c0": expect\.decision: expected "ALLOW" or "DENY", got the string "maybe" \(line 2\)$/);
      return true;
    });
  });

  it('refuses to run no case at all', () => {
    assert.throws(() => loadPolicyTests([]), { code: 'MG_POLICY_TEST_INVALID', message: /no policy test cases were given/ });
  });
});
