/** `meshgate policy test`, run in-process through runCli: report, --json, exit codes, bad files. */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../../src/cli/main.ts';
import { captureIO } from '../../helpers/cli.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const POLICY = `apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: orders }
spec:
  action: ALLOW
  rules:
    - id: rw
      from: [{ source: { principals: ["td/ns/shop/sa/orders"] } }]
      to:
        - mariadb: { databases: [shop], role: shop_writer }
        - firestore: { collections: ["orders/*"], operations: [read], serviceAccount: orders@p-1.iam.gserviceaccount.com }
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: deny-staging }
spec:
  action: DENY
  rules:
    - from: [{ source: { namespaces: [staging] } }]
`;

const PASSING = `tests:
  - name: orders writes shop
    caller: { principal: spiffe://td/ns/shop/sa/orders }
    request: { mariadb: { database: shop } }
    expect: { decision: ALLOW, rule: orders/rw, role: shop_writer, serviceClass: default }
  - name: orders reads an order
    caller: { principal: td/ns/shop/sa/orders }
    request: { firestore: { path: orders/o1, operation: read } }
    expect: { decision: ALLOW, rule: orders/rw, googleServiceAccount: orders@p-1.iam.gserviceaccount.com }
`;

const FAILING = `tests:
  - name: staging is denied by its rule
    caller: { principal: td/ns/staging/sa/orders }
    request: { mariadb: { database: shop } }
    expect: { decision: DENY, rule: deny-staging/0 }
  - name: staging writes shop
    caller: { principal: td/ns/staging/sa/orders }
    request: { mariadb: { database: shop } }
    expect: { decision: ALLOW, rule: orders/rw, role: shop_writer }
  - name: orders writes an order
    caller: { principal: td/ns/shop/sa/orders }
    request: { firestore: { path: orders/o1, operation: write } }
    expect: { decision: ALLOW, rule: orders/rw }
  - name: anyone else by default
    caller: { principal: td/ns/web/sa/front }
    request: { mariadb: {} }
    expect: { decision: DENY, rule: orders/rw }
`;

describe('meshgate policy test', () => {
  let cwd = '';
  before(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'mgt_policytest_'));
    await mkdir(join(cwd, 'policy', 'tests'), { recursive: true });
    await writeFile(join(cwd, 'policy', 'policy.yaml'), POLICY);
    await writeFile(join(cwd, 'policy', 'tests', 'a-passing.yaml'), PASSING);
    await mkdir(join(cwd, 'failing'));
    await writeFile(join(cwd, 'failing', 'cases.yml'), FAILING);
    await writeFile(join(cwd, 'failing', 'notes.txt'), 'not a test file');
    await mkdir(join(cwd, 'empty'));
    await mkdir(join(cwd, 'broken-policy'));
    await writeFile(join(cwd, 'broken-policy', 'p.yaml'), POLICY.replace(', role: shop_writer', ''));
    await writeFile(join(cwd, 'bad.yaml'), PASSING.replace('decision: ALLOW, rule: orders/rw, role', 'decision: allow, rule: orders/rw, role'));
  });
  after(async () => {
    await rm(cwd, { recursive: true, force: true });
  });

  const run = async (...argv: string[]) => {
    const io = captureIO(cwd);
    const code = await runCli(['policy', 'test', ...argv], io);
    return { code, out: io.stdout, err: io.stderr };
  };

  it('all cases pass: one ok line each, the summary, exit 0; a directory of tests is read', async () => {
    const { code, out, err } = await run('policy', '--tests', 'policy/tests');
    assert.deepEqual(err, []);
    assert.deepEqual(out, ['ok    orders writes shop', 'ok    orders reads an order', '2 passed, 0 failed']);
    assert.equal(code, 0);
  });

  it('a failing case: FAIL with the file and line, each expected field against what was got, and the reason; exit 1', async () => {
    const { code, out } = await run('policy', '--tests', 'policy/tests/a-passing.yaml', '--tests', 'failing');
    assert.equal(code, 1);
    assert.deepEqual(out, [
      'ok    orders writes shop',
      'ok    orders reads an order',
      'ok    staging is denied by its rule',
      'FAIL  staging writes shop (failing/cases.yml:6): decision: expected ALLOW, got DENY; rule: expected orders/rw, got deny-staging/0; role: expected shop_writer, got none; reason: denied by rule deny-staging/0 (DENY for namespaces staging)',
      'FAIL  orders writes an order (failing/cases.yml:10): decision: expected ALLOW, got DENY; rule: expected orders/rw, got default-deny; reason: no ALLOW rule matches spiffe://td/ns/shop/sa/orders for Firestore write on document orders/o1 in database (default); add one to the policy directory',
      'FAIL  anyone else by default (failing/cases.yml:14): rule: expected orders/rw, got default-deny; reason: no ALLOW rule matches spiffe://td/ns/web/sa/front for a connection that names no database (only a rule with databases "*" allows that); add one to the policy directory',
      '3 passed, 3 failed',
    ]);
  });

  it('--json: one document with expected, got, reason and mismatches per case', async () => {
    const { code, out } = await run('policy', '--tests', 'failing', '--json');
    assert.equal(code, 1);
    assert.equal(out.length, 1);
    const report = JSON.parse(out[0]!) as {
      policy: { dir: string; version: string };
      passed: number;
      failed: number;
      cases: { name: string; file: string; line: number; passed: boolean; expected: object; got: Record<string, unknown>; mismatches: object[] }[];
    };
    assert.equal(report.policy.dir, 'policy');
    assert.match(report.policy.version, /^[0-9a-f]{12}$/);
    assert.equal(report.passed, 1);
    assert.equal(report.failed, 3);
    assert.deepEqual(report.cases[1], {
      name: 'staging writes shop',
      file: 'failing/cases.yml',
      line: 6,
      passed: false,
      expected: { decision: 'ALLOW', rule: 'orders/rw', role: 'shop_writer' },
      got: {
        decision: 'DENY',
        rule: 'deny-staging/0',
        role: null,
        googleServiceAccount: null,
        serviceClass: 'default',
        reason: 'denied by rule deny-staging/0 (DENY for namespaces staging)',
        dryRun: null,
      },
      mismatches: [
        { field: 'decision', expected: 'ALLOW', got: 'DENY' },
        { field: 'rule', expected: 'orders/rw', got: 'deny-staging/0' },
        { field: 'role', expected: 'shop_writer', got: null },
      ],
    });
    assert.equal(report.cases[3]?.mismatches.length, 1);
  });

  it('a test file that does not validate: exit 1, naming file, case, field and line, and nothing run', async () => {
    const { code, out, err } = await run('policy', '--tests', 'bad.yaml');
    assert.equal(code, 1);
    assert.deepEqual(out, []);
    assert.deepEqual(err, [
      'meshgate policy test: [MG_POLICY_TEST_INVALID] bad.yaml: tests[0] "orders writes shop": expect.decision: expected "ALLOW" or "DENY", got the string "allow" (line 5)',
    ]);
  });

  it('a policy that does not load: exit 1 with the loader\'s message', async () => {
    const { code, err } = await run('broken-policy', '--tests', 'policy/tests');
    assert.equal(code, 1);
    assert.match(err[0] ?? '', /^meshgate policy test: \[MG_POLICY_INVALID\] broken-policy\/p\.yaml doc 1: spec\.rules\[0\]\.to\[0\]\.mariadb\.role: required for ALLOW rules/);
  });

  it('a missing test file, or a directory without test files: exit 1', async () => {
    const missing = await run('policy', '--tests', 'nope.yaml');
    assert.equal(missing.code, 1);
    assert.deepEqual(missing.err, ['meshgate policy test: [MG_POLICY_TEST_INVALID] cannot read policy test file nope.yaml (ENOENT)']);
    const empty = await run('policy', '--tests', 'empty');
    assert.equal(empty.code, 1);
    assert.deepEqual(empty.err, ['meshgate policy test: [MG_POLICY_TEST_INVALID] no *.yaml test files in empty']);
  });

  it('usage mistakes exit 2 with one line', async () => {
    const noTests = await run('policy');
    assert.equal(noTests.code, 2);
    assert.deepEqual(noTests.err, ["meshgate policy test: --tests is required: a test file or a directory of them (see 'meshgate policy test --help')"]);
    const noDir = await run('--tests', 'policy/tests');
    assert.equal(noDir.code, 2);
    assert.match(noDir.err[0] ?? '', /expected exactly one policy directory/);
    const unknown = await run('policy', '--tests', 'policy/tests', '--verbose');
    assert.equal(unknown.code, 2);
    assert.equal(unknown.err.length, 1);
  });

  it('--help describes the format and the exit codes', async () => {
    const io = captureIO(cwd);
    assert.equal(await runCli(['policy', 'test', '--help'], io), 0);
    const help = io.stdout.join('\n');
    assert.match(help, /--tests FILE\|DIR/);
    assert.match(help, /Exit code: 0 when every case passes, 1 when one fails/);
  });
});

const WATCH = `apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: watch-web }
spec:
  action: AUDIT
  rules:
    - id: no-web
      from: [{ source: { namespaces: [shop] } }]
      to: [{ mariadb: { databases: [shop] } }]
`;

const DRY_RUN_CASES = `tests:
  - name: orders would be denied by the watched rule, and is allowed
    caller: { principal: td/ns/shop/sa/orders }
    request: { mariadb: { database: shop } }
    expect: { decision: ALLOW, rule: orders/rw, dryRun: watch-web/no-web }
  - name: staging is not watched
    caller: { principal: td/ns/staging/sa/orders }
    request: { mariadb: { database: shop } }
    expect: { decision: DENY, dryRun: null }
  - name: expects no dry run where one matches
    caller: { principal: td/ns/shop/sa/orders }
    request: { mariadb: { database: shop } }
    expect: { decision: ALLOW, dryRun: null }
`;

describe('meshgate policy test: dry runs (action AUDIT)', () => {
  let cwd = '';
  before(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'mgt_policytest_dry_'));
    await mkdir(join(cwd, 'policy'));
    await writeFile(join(cwd, 'policy', 'policy.yaml'), POLICY);
    await writeFile(join(cwd, 'policy', 'watch.yaml'), WATCH);
    await writeFile(join(cwd, 'dry.yaml'), DRY_RUN_CASES);
  });
  after(async () => {
    await rm(cwd, { recursive: true, force: true });
  });

  it('expect.dryRun checks the first matching AUDIT rule, or that none matches; a failure shows the dry run\'s reason', async () => {
    const io = captureIO(cwd);
    assert.equal(await runCli(['policy', 'test', 'policy', '--tests', 'dry.yaml'], io), 1);
    assert.deepEqual(io.stdout, [
      'ok    orders would be denied by the watched rule, and is allowed',
      'ok    staging is not watched',
      'FAIL  expects no dry run where one matches (dry.yaml:10): dryRun: expected none, got watch-web/no-web; reason: allowed by rule orders/rw as role shop_writer; dry run: would be denied by rule watch-web/no-web (DENY for namespaces shop on databases shop) (action AUDIT: recorded, not enforced)',
      '2 passed, 1 failed',
    ]);
  });

  it('--json carries the dry run beside the decision', async () => {
    const io = captureIO(cwd);
    await runCli(['policy', 'test', 'policy', '--tests', 'dry.yaml', '--json'], io);
    const report = JSON.parse(io.stdout[0]!) as { cases: { got: { dryRun: unknown } }[] };
    assert.deepEqual(report.cases[0]?.got.dryRun, {
      decision: 'DENY',
      rule: 'watch-web/no-web',
      reason: 'would be denied by rule watch-web/no-web (DENY for namespaces shop on databases shop) (action AUDIT: recorded, not enforced)',
    });
    assert.equal(report.cases[1]?.got.dryRun, null);
  });
});

describe('deploy/examples: the example policy passes its example tests', () => {
  it('meshgate policy test deploy/examples/policy --tests deploy/examples/policy/tests', async () => {
    const io = captureIO(ROOT);
    const code = await runCli(['policy', 'test', 'deploy/examples/policy', '--tests', 'deploy/examples/policy/tests'], io);
    assert.deepEqual(io.stderr, []);
    assert.equal(io.stdout.at(-1), `${io.stdout.length - 1} passed, 0 failed`);
    assert.ok(io.stdout.length > 8, 'the example covers every example policy file');
    assert.equal(code, 0);
  });
});
