import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { firestorePathKind, firestoreRequestProblem } from '../../../src/policy/firestore-request.ts';
import { loadPolicyDocuments } from '../../../src/policy/loader.ts';
import { subjectFromPrincipal } from '../../../src/policy/subject.ts';
import type { CompiledPolicy, Decision, FirestoreOperation, FirestorePathKind, FirestoreRequest } from '../../../src/policy/types.ts';

const HEAD = 'apiVersion: meshgate.dev/v1alpha1\nkind: AccessPolicy\n';
const ORDERS = subjectFromPrincipal('spiffe://cluster.local/ns/shop/sa/orders');
const SA = 'orders@shop-prod.iam.gserviceaccount.com';

/** A document whose rules are given as YAML flow mappings (JSON works too). */
function doc(name: string, action: 'ALLOW' | 'DENY', ...rules: string[]): string {
  return `${HEAD}metadata: { name: ${name} }\nspec:\n  action: ${action}\n  rules:\n${rules.map((r) => `    - ${r}\n`).join('')}`;
}

/** An ALLOW rule for everyone on one firestore target. */
function allowFs(name: string, target: Record<string, unknown>): string {
  return doc(name, 'ALLOW', `{ to: [{ firestore: ${JSON.stringify({ operations: ['read', 'write', 'admin'], ...target })} }] }`);
}

function denyFs(name: string, target: Record<string, unknown>): string {
  return doc(name, 'DENY', `{ to: [{ firestore: ${JSON.stringify(target)} }] }`);
}

function load(...docs: string[]): CompiledPolicy {
  return loadPolicyDocuments(docs.map((text, i) => ({ name: `p${i}.yaml`, text })));
}

function fs(path: string, operation: FirestoreOperation = 'read', database = '(default)', pathKind?: FirestorePathKind): FirestoreRequest {
  return { engine: 'firestore', database, path, pathKind: pathKind ?? firestorePathKind(path), operation };
}

function decide(policy: CompiledPolicy, request: FirestoreRequest): Decision {
  return policy.evaluate(ORDERS, request);
}

function problem(text: string): string {
  try {
    loadPolicyDocuments([{ name: 'policy/fs.yaml', text }]);
  } catch (error) {
    if (!isMeshgateError(error)) throw error;
    assert.equal(error.code, 'MG_POLICY_INVALID');
    return error.message;
  }
  return assert.fail('expected the policy to be rejected');
}

const VALID = `${HEAD}metadata:
  name: orders-firestore
spec:
  action: ALLOW
  rules:
    - id: orders-rw
      from:
        - source:
            principals: ["cluster.local/ns/shop/sa/orders"]
      to:
        - firestore:
            databases: ["(default)"]
            collections: ["orders/*", "orders/*/items/*"]
            operations: [read, write]
            serviceAccount: ${SA}
`;

describe('firestore targets: validation names file, document and field', () => {
  const cases: [string, string, string][] = [
    ['the valid example loads', VALID, ''],
    [
      'ALLOW without operations',
      VALID.replace('            operations: [read, write]\n', ''),
      'policy/fs.yaml doc 1: spec.rules[0].to[0].firestore.operations: required for ALLOW rules: list read, write and/or admin (line 14)',
    ],
    [
      'an RPC name instead of a class',
      VALID.replace('[read, write]', '[get, write]'),
      'spec.rules[0].to[0].firestore.operations[0]: expected "read", "write" or "admin", got the string "get"; the classes are read (get, list, query, aggregate, listen)',
    ],
    ['empty operations', VALID.replace('[read, write]', '[]'), 'spec.rules[0].to[0].firestore.operations: must not be empty'],
    ['missing collections', VALID.replace(/ {12}collections:.*\n/, ''), 'spec.rules[0].to[0].firestore.collections: required'],
    ['empty collections', VALID.replace('["orders/*", "orders/*/items/*"]', '[]'), 'spec.rules[0].to[0].firestore.collections: must not be empty'],
    [
      'a collection where documents are meant',
      VALID.replace('"orders/*/items/*"', '"orders/*/items"'),
      'spec.rules[0].to[0].firestore.collections[1]: "orders/*/items" names a collection, but patterns name documents: write "orders/*/items/*"',
    ],
    ['leading slash', VALID.replace('"orders/*",', '"/orders/*",'), 'collections[0]: "/orders/*": no leading or trailing "/"'],
    ['empty segment', VALID.replace('"orders/*",', '"orders//*",'), 'collections[0]: "orders//*" has an empty segment'],
    ['star inside a segment', VALID.replace('"orders/*",', '"or*ers/*",'), 'collections[0]: "or*ers/*": segment "or*ers": a segment is "*"'],
    ['triple star', VALID.replace('"orders/*",', '"orders/***",'), 'segment "***"'],
    ['dot-dot', VALID.replace('"orders/*",', '"orders/..",'), '"." and ".." are not Firestore ids'],
    ['database glob in the middle', VALID.replace('["(default)"]', '["a*b"]'), 'firestore.databases[0]: "a*b": "*" may appear only'],
    ['bad service account', VALID.replace(SA, 'orders@gmail.com'), 'firestore.serviceAccount: "orders@gmail.com" must be a Google service account email'],
    [
      'unknown firestore field',
      VALID.replace('            operations:', '            operation: [read]\n            operations:'),
      'spec.rules[0].to[0].firestore.operation: unknown field; allowed here: databases, collections, operations, serviceAccount',
    ],
    [
      'both engines in one to[] item',
      VALID.replace('        - firestore:\n', '        - mariadb: { role: r }\n          firestore:\n'),
      'spec.rules[0].to[0]: names both mariadb and firestore: use one to[] item for each',
    ],
    ['no engine in a to[] item', VALID.replace(/ {8}- firestore:[\s\S]*$/, '        - {}\n'), 'spec.rules[0].to[0]: names no target: give mariadb or firestore'],
    [
      'service account on a DENY rule',
      VALID.replace('action: ALLOW', 'action: DENY'),
      'spec.rules[0].to[0].firestore.serviceAccount: not allowed on DENY rules: a DENY rule grants nothing',
    ],
    [
      'misindented target key',
      VALID.replace('            serviceAccount:', '          serviceAccount:'),
      'spec.rules[0].to[0].serviceAccount: unknown field; allowed here: mariadb, firestore (line 17)',
    ],
  ];
  for (const [name, text, expected] of cases) {
    it(name, () => {
      if (expected === '') {
        assert.equal(loadPolicyDocuments([{ name: 'policy/fs.yaml', text }]).ruleCount, 1);
        return;
      }
      const message = problem(text);
      assert.ok(message.includes(expected), `message:\n${message}\nlacks:\n${expected}`);
    });
  }

  it('DENY rules may omit operations (every operation) and databases ((default))', () => {
    const policy = load(allowFs('a', { collections: ['**'], databases: ['*'] }), denyFs('d', { collections: ['secrets/**'] }));
    for (const op of ['read', 'write', 'admin'] as const) assert.equal(decide(policy, fs('secrets/s1', op)).ruleId, 'd/0');
    assert.equal(decide(policy, fs('secrets/s1', 'read', 'other-db')).ruleId, 'a/0');
  });

  it('accepts the other service account forms', () => {
    for (const account of ['1234-compute@developer.gserviceaccount.com', 'my-project@appspot.gserviceaccount.com']) {
      assert.equal(load(allowFs('a', { collections: ['**'], serviceAccount: account })).evaluate(ORDERS, fs('x/y')).googleServiceAccount, account);
    }
  });
});

describe('firestore path matching (ALLOW: every reachable document)', () => {
  // [collections, path, expected]; the path's kind follows from its shape.
  const cases: [string[], string, boolean][] = [
    [['orders/*'], 'orders/o1', true],
    [['orders/*'], 'orders', true],
    [['orders/*'], 'orders/o1/items/i1', false],
    [['orders/*'], 'orders/o1/items', false],
    [['orders/*'], 'order/o1', false],
    [['orders/*'], 'ordersx/o1', false],
    [['orders/o1'], 'orders/o1', true],
    [['orders/o1'], 'orders/o2', false],
    [['orders/o1'], 'orders', false], // listing orders would return o2 too
    [['orders/tmp-*'], 'orders/tmp-1', true],
    [['orders/tmp-*'], 'orders/tmp-', true],
    [['orders/tmp-*'], 'orders/1-tmp', false],
    [['orders/tmp-*'], 'orders', false],
    [['orders/*-eu'], 'orders/x-eu', true],
    [['orders/*-eu'], 'orders/x-us', false],
    [['tenant-*/*'], 'tenant-a/d', true],
    [['tenant-*/*'], 'tenant-a', true],
    [['tenant-*/*'], 'other/d', false],
    [['orders/*/items/*'], 'orders/o1/items/i1', true],
    [['orders/*/items/*'], 'orders/o1/items', true],
    [['orders/*/items/*'], 'orders/o1', false],
    [['orders/*/items/*'], 'orders', false],
    [['orders/*/items/*'], 'orders/o1/notes/n1', false],
    [['analytics/**'], 'analytics/a', true],
    [['analytics/**'], 'analytics/a/b/c/d/e', true],
    [['analytics/**'], 'analytics', true],
    [['analytics/**'], 'analytics/a/b', true],
    [['analytics/**'], 'analyticsx/a', false],
    [['orders/o1/**'], 'orders/o1', true], // `**` matches zero segments, as in Firestore rules v2
    [['orders/o1/**'], 'orders/o1/items/i1', true],
    [['orders/o1/**'], 'orders/o2/items/i1', false],
    [['orders/o1/**'], 'orders', false],
    [['**'], 'a/b', true],
    [['**'], 'a/b/c/d/e/f/g/h', true],
    [['**'], 'a', true],
    [['**'], '', true], // the database root
    [['orders/*'], '', false],
    [['**/items/*'], 'orders/o1/items/i1', true],
    [['**/items/*'], 'items/i1', true],
    [['**/items/*'], 'orders/o1/items', true],
    [['**/items/*'], 'orders/o1/notes/n1', false],
    [['a/**/b/*'], 'a/x/b/y', true],
    [['a/**/b/*'], 'a/x/y/z/b/w', true],
    [['a/**/b/*'], 'a/b/b/y', true],
    [['a/**/b/*'], 'a/b/x', false], // a collection: a/b/x/{id} ends in x/{id}
    [['a/**/b/*'], 'a/b', false],
    [['a/**/b/*'], 'a/b/x/b', false],
    [['a/**/b/*'], 'a/b/x/c', false],
    [['**/**/x/*'], 'p/q/x/y', true],
    [['orders/*', 'customers/*'], 'customers/c1', true],
    // collection groups: every collection with that id below the parent
    [['**'], '**/items', true],
    [['orders/**'], 'orders/o1/**/items', true],
    [['orders/*/**'], 'orders/o1/**/items', true],
    [['orders/o1/*/**'], 'orders/o1/**/items', true],
    [['orders/**'], '**/items', false],
    [['**/items/*'], '**/items', true],
    [['**/items/*'], 'orders/o1/**/items', true],
    [['**/items/**'], '**/items', true],
    [['**/notes/*'], '**/items', false],
    [['orders/*/items/*'], 'orders/o1/**/items', false], // orders/o1/x/y/items/z too
    [['items/*'], '**/items', false],
    [['*/*/**'], '**/items', true], // any path of two or more segments
    [['items/*', '*/*/**/items/*'], '**/items', true], // together they cover it
    [['*/*/**/items/*'], '**/items', false], // not items/i directly at the root
    [['orders/o2/**'], 'orders/o1/**/items', false],
    [['orders/o1/items/*'], 'orders/o1/**/items', false],
    [['orders/*/*/*/**'], 'orders/o1/**/items', true],
    [['orders/*/*/*/*/**'], 'orders/o1/**/items', false], // misses orders/o1/items/i directly
  ];
  for (const [collections, path, expected] of cases) {
    it(`${collections.join(', ')} ${expected ? 'covers' : 'does not cover'} ${firestorePathKind(path)} ${JSON.stringify(path)}`, () => {
      assert.equal(decide(load(allowFs('a', { collections })), fs(path)).allow, expected);
    });
  }

  it('a list is covered only within one target, not across targets or rules', () => {
    const deep = '*/*/**/items/*';
    const split = doc('a', 'ALLOW', `{ to: [{ firestore: { collections: ["items/*"], operations: [read] } }, { firestore: { collections: ["${deep}"], operations: [read] } }] }`);
    assert.equal(decide(load(split), fs('**/items')).allow, false);
    assert.equal(decide(load(allowFs('a', { collections: ['items/*'] }), allowFs('b', { collections: [deep] })), fs('**/items')).allow, false);
    assert.equal(decide(load(allowFs('a', { collections: ['items/*', deep] })), fs('**/items')).allow, true);
  });

  it('a document literally named "**" or "*" is just an id', () => {
    const policy = load(allowFs('a', { collections: ['orders/*'] }));
    assert.equal(decide(policy, fs('orders/**', 'read', '(default)', 'document')).allow, true);
    assert.equal(decide(policy, fs('orders/*', 'read', '(default)', 'document')).allow, true);
    assert.equal(decide(load(allowFs('a', { collections: ['orders/o1'] })), fs('orders/*', 'read', '(default)', 'document')).allow, false);
  });
});

describe('firestore DENY rules: some reachable document suffices, and deny wins', () => {
  const everything = allowFs('all', { collections: ['**'], databases: ['*'] });
  const cases: [string[], string, boolean][] = [
    [['orders/secret-*'], 'orders/secret-1', true],
    [['orders/secret-*'], 'orders/o1', false],
    [['orders/secret-*'], 'orders', true], // a list of orders could return secret-1
    [['orders/o1'], 'orders', true],
    [['orders/o1'], 'orders/o1/items', false],
    [['orders/*/items/*'], 'orders', false],
    [['orders/*/items/*'], 'orders/o1/items', true],
    [['secrets/**'], '**/items', true], // secrets/s/items/i is in the group
    [['orders/**'], '**/items', true],
    [['secrets/**'], 'orders/o1/**/items', false],
    [['orders/*/items/*'], 'orders/o1/**/items', true],
    [['orders/*/items/*'], 'orders/o1/x/y/**/items', false], // that group is deeper
    [['*/*/private/*'], '**/private', true],
    [['*/*/private/*'], '**/public', false],
    [['orders/o1'], 'orders/o1/**/items', false],
    [['**'], '', true],
    [['orders/*'], '', false],
  ];
  for (const [collections, path, expected] of cases) {
    it(`DENY ${collections.join(', ')} ${expected ? 'blocks' : 'spares'} ${firestorePathKind(path)} ${JSON.stringify(path)}`, () => {
      const decision = decide(load(everything, denyFs('d', { collections })), fs(path));
      assert.equal(decision.allow, !expected);
      assert.equal(decision.ruleId, expected ? 'd/0' : 'all/0');
    });
  }

  it('a DENY with operations blocks only those', () => {
    const policy = load(everything, denyFs('d', { collections: ['ledger/**'], operations: ['write', 'admin'] }));
    assert.equal(decide(policy, fs('ledger/l1', 'read')).allow, true);
    assert.equal(decide(policy, fs('ledger/l1', 'write')).ruleId, 'd/0');
    assert.equal(decide(policy, fs('ledger', 'admin')).ruleId, 'd/0');
  });

  it('a DENY with databases blocks only those', () => {
    const policy = load(everything, denyFs('d', { databases: ['audit-*'], collections: ['**'] }));
    assert.equal(decide(policy, fs('x/y', 'read', 'audit-eu')).ruleId, 'd/0');
    assert.equal(decide(policy, fs('x/y', 'read', '(default)')).allow, true);
  });

  it('the DENY reason names the rule and its target', () => {
    const policy = load(everything, denyFs('d', { collections: ['secrets/**'], operations: ['write'] }));
    assert.equal(
      decide(policy, fs('secrets/s', 'write')).reason,
      'denied by rule d/0 (DENY for every caller on Firestore write on collections secrets/** in databases (default))',
    );
  });
});

describe('firestore operations, databases and decisions', () => {
  it('an ALLOW grants only the listed operation classes', () => {
    const policy = load(allowFs('a', { collections: ['orders/*'], operations: ['read'] }));
    assert.equal(decide(policy, fs('orders/o1', 'read')).allow, true);
    assert.equal(decide(policy, fs('orders/o1', 'write')).allow, false);
    assert.equal(decide(policy, fs('orders', 'admin')).allow, false);
  });

  it('databases default to (default); "*" and globs widen it', () => {
    assert.equal(decide(load(allowFs('a', { collections: ['**'] })), fs('a/b', 'read', '(default)')).allow, true);
    assert.equal(decide(load(allowFs('a', { collections: ['**'] })), fs('a/b', 'read', 'orders-db')).allow, false);
    assert.equal(decide(load(allowFs('a', { collections: ['**'], databases: ['orders-db'] })), fs('a/b', 'read', '(default)')).allow, false);
    assert.equal(decide(load(allowFs('a', { collections: ['**'], databases: ['*'] })), fs('a/b', 'read', 'orders-db')).allow, true);
    assert.equal(decide(load(allowFs('a', { collections: ['**'], databases: ['tenant-*'] })), fs('a/b', 'read', 'tenant-7')).allow, true);
  });

  it('an ALLOW decision carries the service account, no role and no LOCAL INFILE', () => {
    const policy = loadPolicyDocuments([{ name: 'fs.yaml', text: VALID }]);
    assert.deepEqual(
      { ...decide(policy, fs('orders/o1/items/i1', 'write')) },
      {
        allow: true,
        ruleId: 'orders-firestore/orders-rw',
        role: null,
        allowLocalInfile: false,
        auditParameters: 'none',
        googleServiceAccount: SA,
        traceQueryText: null,
        serviceClass: 'default',
        policyVersion: policy.version,
        reason: `allowed by rule orders-firestore/orders-rw for Firestore read, write on collections orders/*, orders/*/items/* in databases (default) as service account ${SA}`,
      },
    );
    assert.ok(Object.isFrozen(decide(policy, fs('orders/o1'))));
    assert.equal(decide(load(allowFs('a', { collections: ['**'] })), fs('x/y')).googleServiceAccount, null);
  });

  it('the first matching target of a rule supplies the service account', () => {
    const text = doc(
      'a',
      'ALLOW',
      `{ to: [{ firestore: { collections: ["orders/*"], operations: [write], serviceAccount: "w@p.iam.gserviceaccount.com" } }, { firestore: { collections: ["**"], operations: [read], serviceAccount: "r@p.iam.gserviceaccount.com" } }] }`,
    );
    const policy = load(text);
    assert.equal(decide(policy, fs('orders/o1', 'write')).googleServiceAccount, 'w@p.iam.gserviceaccount.com');
    assert.equal(decide(policy, fs('orders/o1', 'read')).googleServiceAccount, 'r@p.iam.gserviceaccount.com');
    assert.equal(decide(policy, fs('other/o1', 'write')).allow, false);
  });

  it('the default deny names the caller, operation, path and database', () => {
    const policy = load(allowFs('a', { collections: ['orders/*'] }));
    assert.deepEqual(
      { ...decide(policy, fs('orders/o1/**/items', 'read', 'orders-db')) },
      {
        allow: false,
        ruleId: null,
        role: null,
        allowLocalInfile: false,
        auditParameters: 'none',
        googleServiceAccount: null,
        traceQueryText: null,
        serviceClass: 'default',
        policyVersion: policy.version,
        reason: `no ALLOW rule matches ${ORDERS.spiffeId} for Firestore read on collection group items under orders/o1 in database orders-db; add one to the policy directory`,
      },
    );
  });
});

describe('engines do not mix, and deny wins across them', () => {
  const mariadbAllow = doc('m', 'ALLOW', '{ to: [{ mariadb: { databases: ["*"], role: r } }] }');
  const firestoreAllow = allowFs('f', { collections: ['**'], databases: ['*'] });
  const mysql = { engine: 'mysql', database: 'shop' } as const;

  it('a mariadb target never matches a firestore request, and vice versa', () => {
    assert.equal(decide(load(mariadbAllow), fs('a/b')).allow, false);
    assert.equal(load(firestoreAllow).evaluate(ORDERS, mysql).allow, false);
    assert.equal(load(firestoreAllow).evaluate(ORDERS, { engine: 'mysql', database: null }).allow, false);
    const both = load(mariadbAllow, firestoreAllow);
    assert.equal(both.evaluate(ORDERS, mysql).ruleId, 'm/0');
    assert.equal(both.evaluate(ORDERS, mysql).googleServiceAccount, null);
    assert.equal(decide(both, fs('a/b')).ruleId, 'f/0');
  });

  it('a DENY without `to` blocks both engines', () => {
    const policy = load(mariadbAllow, firestoreAllow, doc('d', 'DENY', '{ from: [{ source: { namespaces: [shop] } }] }'));
    assert.equal(policy.evaluate(ORDERS, mysql).ruleId, 'd/0');
    assert.equal(decide(policy, fs('a/b')).ruleId, 'd/0');
  });

  it('a DENY on one engine leaves the other alone', () => {
    const policy = load(mariadbAllow, firestoreAllow, denyFs('d', { collections: ['**'], databases: ['*'] }), doc('e', 'DENY', '{ to: [{ mariadb: { databases: [shop] } }] }'));
    assert.equal(policy.evaluate(ORDERS, mysql).ruleId, 'e/0');
    assert.equal(policy.evaluate(ORDERS, { engine: 'mysql', database: 'other' }).ruleId, 'm/0');
    assert.equal(decide(policy, fs('a/b')).ruleId, 'd/0');
  });

  it('one rule may grant both engines', () => {
    const policy = load(doc('b', 'ALLOW', '{ to: [{ mariadb: { databases: [shop], role: r } }, { firestore: { collections: ["orders/*"], operations: [read] } }] }'));
    assert.equal(policy.evaluate(ORDERS, mysql).role, 'r');
    assert.equal(decide(policy, fs('orders/o1')).allow, true);
    assert.equal(decide(policy, fs('orders/o1')).role, null);
  });
});

describe('malformed firestore requests are denied before any rule', () => {
  const policy = load(allowFs('a', { collections: ['**'], databases: ['*'] }));
  const cases: [FirestoreRequest, RegExp][] = [
    [fs('orders//o1', 'read', '(default)', 'document'), /empty segment/],
    [fs('/orders/o1', 'read', '(default)', 'document'), /empty segment/],
    [fs('orders/o1/', 'read', '(default)', 'document'), /empty segment/],
    [fs('orders', 'read', '(default)', 'document'), /odd number of segments/],
    [fs('orders/o1', 'read', '(default)', 'collection'), /even number of segments/],
    [fs('', 'read', '(default)', 'collection'), /empty segment/],
    [fs('orders/../secrets/s', 'read', '(default)', 'document'), /"\." and "\.\."/],
    [fs('orders/.', 'read', '(default)', 'document'), /"\." and "\.\."/],
    [fs('**/items', 'read', '(default)', 'collection'), /even number/],
    [fs('orders/**/items', 'read', '(default)', 'collection-group'), /not a collection group/],
    [fs('orders/o1/items', 'read', '(default)', 'collection-group'), /not a collection group/],
    [fs('**/**/items', 'read', '(default)', 'collection-group'), /not a collection group/],
    [fs('**/items/**', 'read', '(default)', 'collection-group'), /not a collection group/],
    [fs('a/b', 'read', ''), /names no Firestore database/],
    [{ ...fs('a/b'), operation: 'get' as FirestoreOperation }, /unknown Firestore operation "get"/],
    [{ ...fs('a/b'), pathKind: 'doc' as FirestorePathKind }, /unknown path kind "doc"/],
    [fs(`${'a/'.repeat(100)}b/c`, 'read', '(default)', 'document'), /more than 100 segments/],
    [fs(`${'a/'.repeat(100)}b`, 'read', '(default)', 'collection'), /more than 100 segments/],
    [fs('a/'.repeat(4000).slice(0, -1), 'read', '(default)', 'collection'), /longer than 6144/],
  ];
  for (const [request, reason] of cases) {
    it(`${request.pathKind} ${JSON.stringify(request.path.slice(0, 40))} (${request.operation} in ${JSON.stringify(request.database)})`, () => {
      const decision = policy.evaluate(ORDERS, request);
      assert.equal(decision.allow, false);
      assert.equal(decision.ruleId, null);
      assert.match(decision.reason, /^malformed Firestore request, denied: /);
      assert.match(decision.reason, reason);
      assert.equal(firestoreRequestProblem(request) !== null, true);
      const explained = policy.explain(ORDERS, request);
      assert.equal(explained.reason, decision.reason);
      assert.ok(explained.trace.every((t) => !t.matched && t.why.startsWith('not considered: ')));
    });
  }

  it('well-formed edge cases pass: the root, 100 segments, a group at the root', () => {
    for (const request of [fs(''), fs(`${'a/'.repeat(98)}b/c`), fs('**/items'), fs('a/b/**/c'), fs('a/**', 'read', '(default)', 'document')]) {
      assert.equal(firestoreRequestProblem(request), null, request.path);
    }
  });

  it('firestorePathKind reads the shape', () => {
    assert.deepEqual(
      ['', 'a', 'a/b', 'a/b/c', '**/c', 'a/b/**/c'].map(firestorePathKind),
      ['document', 'collection', 'document', 'collection', 'collection-group', 'collection-group'],
    );
  });
});

describe('explain for firestore', () => {
  const policy = load(
    doc('d', 'DENY', '{ id: secrets, to: [{ firestore: { collections: ["secrets/**"] } }] }', '{ id: mysql-only, to: [{ mariadb: { databases: [x] } }] }'),
    doc(
      'a',
      'ALLOW',
      '{ id: orders, to: [{ firestore: { collections: ["orders/*", "orders/*/items/*"], operations: [read], serviceAccount: "o@p.iam.gserviceaccount.com" } }] }',
      '{ id: writes, to: [{ firestore: { collections: ["**"], operations: [write] } }] }',
      '{ id: eu, to: [{ firestore: { databases: ["eu-*"], collections: ["**"], operations: [read] } }] }',
    ),
  );
  const rows = (request: FirestoreRequest) => policy.explain(ORDERS, request).trace.map((t) => `${t.ruleId} ${t.matched ? 'yes' : 'no'}: ${t.why}`);

  it('says why each rule did or did not match a collection group', () => {
    assert.deepEqual(rows(fs('orders/o1/**/items')), [
      'd/secrets no: the caller matches, but no document the collection group items under orders/o1 can reach is in collections secrets/**',
      'd/mysql-only no: the caller matches, but a mariadb target does not apply to a Firestore request',
      'a/orders no: the caller matches, but collections orders/*, orders/*/items/* do not cover the collection group items under orders/o1: it can reach orders/o1/{any}/{any}/items/{any}',
      'a/writes no: the caller matches, but operation read is not in operations write',
      'a/eu no: the caller matches, but Firestore database (default) is not in databases eu-*',
    ]);
  });

  it('names the deciding rule and the service account', () => {
    const e = policy.explain(ORDERS, fs('orders'));
    assert.equal(e.googleServiceAccount, 'o@p.iam.gserviceaccount.com');
    assert.equal(
      rows(fs('orders'))[2],
      'a/orders yes: decides: for Firestore read on collections orders/*, orders/*/items/* in databases (default) as service account o@p.iam.gserviceaccount.com',
    );
    assert.equal(rows(fs('secrets/s/x/y', 'write'))[0], 'd/secrets yes: decides: DENY for every caller on Firestore collections secrets/** in databases (default)');
    assert.equal(rows(fs('secrets/s/x/y', 'write'))[3], 'a/writes yes: matches, but DENY rule d/secrets wins');
  });

  it('shows an uncovered document of a collection and a plain document miss', () => {
    assert.equal(rows(fs('customers'))[2], 'a/orders no: the caller matches, but collections orders/*, orders/*/items/* do not cover the collection customers: it can reach customers/{any}');
    assert.equal(rows(fs('customers/c1'))[2], 'a/orders no: the caller matches, but document customers/c1 is not in collections orders/*, orders/*/items/*');
    assert.equal(rows(fs(''))[2], 'a/orders no: the caller matches, but the database root is not in collections orders/*, orders/*/items/*');
  });

  it('a firestore target on a MariaDB connection says so', () => {
    const e = policy.explain(ORDERS, { engine: 'mysql', database: 'x' });
    assert.deepEqual(
      e.trace.map((t) => t.why),
      [
        'the caller matches, but a firestore target does not apply to a MariaDB connection',
        'decides: DENY for every caller on databases x',
        'the caller matches, but a firestore target does not apply to a MariaDB connection',
        'the caller matches, but a firestore target does not apply to a MariaDB connection',
        'the caller matches, but a firestore target does not apply to a MariaDB connection',
      ],
    );
  });

  it('agrees with evaluate on every request shape', () => {
    const requests = ['', 'orders', 'orders/o1', 'orders/o1/items', 'orders/o1/items/i1', '**/items', 'orders/o1/**/items', 'secrets/s', 'secrets', '**/secrets'];
    for (const path of requests) {
      for (const op of ['read', 'write', 'admin'] as const) {
        for (const db of ['(default)', 'eu-1']) {
          const { trace, dryRun: _dryRun, ...explained } = policy.explain(ORDERS, fs(path, op, db));
          assert.deepEqual(explained, { ...policy.evaluate(ORDERS, fs(path, op, db)) });
          assert.equal(trace.length, policy.ruleCount);
        }
      }
    }
  });
});

describe('firestore evaluation speed', () => {
  it('100k document evaluations against 40 rules take well under a second', (t) => {
    const rules: string[] = [];
    for (let i = 0; i < 10; i += 1) {
      rules.push(doc(`deny-${i}`, 'DENY', `{ from: [{ source: { namespaces: [ns-${i}] } }], to: [{ firestore: { collections: ["secret-${i}/**"] } }] }`));
      rules.push(allowFs(`exact-${i}`, { collections: [`c${i}/*`, `c${i}/*/items/*`] }).replace('{ to:', `{ from: [{ source: { principals: ["cluster.local/ns/shop/sa/svc-${i}"] } }], to:`));
      rules.push(allowFs(`glob-${i}`, { collections: [`t${i}-*/*`, `**/log-${i}/*`] }).replace('{ to:', `{ from: [{ source: { namespaces: [team-${i}] } }], to:`));
      rules.push(doc(`mysql-${i}`, 'ALLOW', `{ to: [{ mariadb: { databases: [db${i}], role: r${i} } }] }`));
    }
    rules.push(allowFs('orders', { collections: ['orders/*', 'orders/*/items/*', 'analytics/**'], operations: ['read'] }));
    const policy = load(...rules);
    const paths = Array.from({ length: 100 }, (_, i) => (i % 3 === 0 ? `orders/o${i}` : i % 3 === 1 ? `orders/o${i}/items/i${i}` : `analytics/a/b/c${i}`));
    const requests = paths.map((path) => fs(path));
    for (const request of requests) assert.equal(policy.evaluate(ORDERS, request).allow, true);
    const n = 100_000;
    const started = process.hrtime.bigint();
    let allowed = 0;
    for (let i = 0; i < n; i += 1) if (policy.evaluate(ORDERS, requests[i % 100]!).allow) allowed += 1;
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.equal(allowed, n);
    t.diagnostic(`${n} evaluations in ${ms.toFixed(1)} ms (${((ms * 1e6) / n).toFixed(0)} ns each), ${policy.ruleCount} rules`);
    assert.ok(ms < 1000, `${n} evaluations took ${ms.toFixed(0)} ms`);
  });
});
