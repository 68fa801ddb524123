import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError, type CliCommand, type CliIO, type OptionValues } from '../../../src/cli/command.ts';
import { policyCommands } from '../../../src/cli/commands/policy.ts';
import { runCli } from '../../../src/cli/main.ts';

function command(...path: string[]): CliCommand {
  const found = policyCommands.find((c) => c.path.join(' ') === path.join(' '));
  if (found === undefined) return assert.fail(`no command ${path.join(' ')}`);
  return found;
}

function fakeIO(cwd: string): CliIO & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, out: (l) => lines.push(l), err: (l) => errors.push(l), cwd, env: {} };
}

const ORDERS = `apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: orders-read-write }
spec:
  action: ALLOW
  rules:
    - id: shop-rw
      from: [{ source: { principals: ["cluster.local/ns/shop/sa/orders"] } }]
      to: [{ mariadb: { databases: [shop], role: shop_writer, allowLocalInfile: true } }]
`;
const DENY = `apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: deny-staging }
spec:
  action: DENY
  rules:
    - from: [{ source: { namespaces: [staging] } }]
---
# spare separator left by an editor
`;

const TOKENS = `apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: tokens }
spec:
  action: ALLOW
  rules:
    - id: deploy
      from: [{ source: { authMethods: [jwt], claims: { environment: [production], groups: ["db-*"] } } }]
      to: [{ mariadb: { databases: [shop], role: shop_migrator } }]
`;

const FIRESTORE = `apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: orders-firestore }
spec:
  action: ALLOW
  rules:
    - id: orders-read
      from: [{ source: { namespaces: [shop] } }]
      to:
        - firestore:
            collections: ["orders/*", "orders/*/items/*"]
            operations: [read]
            serviceAccount: orders@shop-prod.iam.gserviceaccount.com
    - id: analytics
      to: [{ firestore: { databases: [analytics-db], collections: ["**"], operations: [read, admin] } }]
`;

describe('policy commands', () => {
  let cwd = '';
  before(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'meshgate-policy-cli-'));
    await mkdir(join(cwd, 'policy'));
    await writeFile(join(cwd, 'policy', 'orders.yaml'), ORDERS);
    await writeFile(join(cwd, 'policy', 'deny.yml'), DENY);
    await mkdir(join(cwd, 'broken'));
    await writeFile(join(cwd, 'broken', 'orders.yaml'), ORDERS.replace(', role: shop_writer', ''));
    await mkdir(join(cwd, 'empty'));
    await mkdir(join(cwd, 'tokens'));
    await writeFile(join(cwd, 'tokens', 'tokens.yaml'), TOKENS);
    await mkdir(join(cwd, 'firestore'));
    await writeFile(join(cwd, 'firestore', 'orders.yaml'), FIRESTORE);
    await writeFile(join(cwd, 'firestore', 'deny.yaml'), DENY);
  });
  after(async () => {
    await rm(cwd, { recursive: true, force: true });
  });

  it('every command has a summary, usage and help', () => {
    assert.deepEqual(policyCommands.map((c) => c.path.join(' ')), ['policy validate', 'policy explain']);
    for (const c of policyCommands) assert.ok(c.summary !== '' && c.usage !== '' && c.help !== '');
  });

  it('validate prints documents and rules per file', async () => {
    const io = fakeIO(cwd);
    assert.equal(await command('policy', 'validate').run({}, ['policy'], io), 0);
    assert.deepEqual(io.lines, [
      'policy/deny.yml     1 document, 1 rule',
      'policy/orders.yaml  1 document, 1 rule',
      'ok: 2 files, 2 documents, 2 rules',
    ]);
  });

  it('validate throws MG_POLICY_INVALID naming file and field', async () => {
    await assert.rejects(command('policy', 'validate').run({}, ['broken'], fakeIO(cwd)), {
      code: 'MG_POLICY_INVALID',
      message: /^broken\/orders\.yaml doc 1: spec\.rules\[0\]\.to\[0\]\.mariadb\.role: required for ALLOW rules/,
    });
    await assert.rejects(command('policy', 'validate').run({}, ['empty'], fakeIO(cwd)), {
      message: 'no policy documents in empty; nothing would be allowed',
    });
  });

  it('validate wants exactly one directory', async () => {
    await assert.rejects(command('policy', 'validate').run({}, [], fakeIO(cwd)), UsageError);
  });

  it('explain exits 0 on allow and prints decision, rule, role, reason and trace', async () => {
    const io = fakeIO(cwd);
    const code = await command('policy', 'explain').run(
      { dir: 'policy', principal: 'spiffe://cluster.local/ns/shop/sa/orders', database: 'shop' },
      [],
      io,
    );
    assert.equal(code, 0);
    assert.deepEqual(io.lines, [
      'decision: ALLOW',
      'rule:     orders-read-write/shop-rw',
      'role:     shop_writer',
      'infile:   LOAD DATA LOCAL INFILE allowed',
      'params:   prepared statement parameters audited as types',
      'reason:   allowed by rule orders-read-write/shop-rw as role shop_writer',
      '',
      'RULE                       ACTION  MATCHED  WHY',
      'deny-staging/0             DENY    no       namespace shop is not in namespaces staging',
      'orders-read-write/shop-rw  ALLOW   yes      decides: as role shop_writer',
    ]);
  });

  it('explain exits 3 on deny, accepting the Istio principal form', async () => {
    const io = fakeIO(cwd);
    const code = await command('policy', 'explain').run({ dir: 'policy', principal: 'cluster.local/ns/staging/sa/orders' }, [], io);
    assert.equal(code, 3);
    assert.equal(io.lines[0], 'decision: DENY');
    assert.equal(io.lines[1], 'rule:     deny-staging/0');
    assert.equal(io.lines[2], 'role:     -');
    assert.equal(io.lines[3], 'reason:   denied by rule deny-staging/0 (DENY for namespaces staging)');
  });

  it('explain turns a bad principal or a missing flag into a usage error', async () => {
    await assert.rejects(command('policy', 'explain').run({ dir: 'policy', principal: 'not a principal' }, [], fakeIO(cwd)), {
      name: 'UsageError',
      message: /^--principal: .*not a SPIFFE ID/,
    });
    await assert.rejects(command('policy', 'explain').run({ principal: 'td/ns/a/sa/b' }, [], fakeIO(cwd)), {
      name: 'UsageError',
      message: '--dir is required',
    });
  });

  it('explain takes token claims: repeated names become lists, --auth-method defaults to jwt', async () => {
    const io = fakeIO(cwd);
    const values = { dir: 'tokens', principal: 'ci.example/github/acme/shop/env/production', database: 'shop' };
    const code = await command('policy', 'explain').run({ ...values, claim: ['environment=production', 'groups=eng', 'groups=db-admins'] }, [], io);
    assert.equal(code, 0);
    assert.equal(io.lines[1], 'rule:     tokens/deploy');
    const denied = fakeIO(cwd);
    assert.equal(await command('policy', 'explain').run({ ...values, claim: ['environment=staging', 'groups=db-admins'] }, [], denied), 3);
    assert.match(denied.lines.at(-1) ?? '', /tokens\/deploy\s+ALLOW\s+no\s+claim environment=staging is not in production$/);
    // A value may hold "=": only the first one splits.
    const eq = fakeIO(cwd);
    assert.equal(await command('policy', 'explain').run({ ...values, claim: ['environment=prod=x', 'groups=db-a'] }, [], eq), 3);
    assert.match(eq.lines.at(-1) ?? '', /claim environment=prod=x is not in production$/);
  });

  it('explain without claims is an mtls caller; --auth-method picks another', async () => {
    const values = { dir: 'tokens', principal: 'ci.example/github/acme/shop/env/production', database: 'shop' };
    const io = fakeIO(cwd);
    assert.equal(await command('policy', 'explain').run(values, [], io), 3);
    assert.match(io.lines.at(-1) ?? '', /auth method mtls is not in authMethods jwt$/);
    const xfcc = fakeIO(cwd);
    assert.equal(await command('policy', 'explain').run({ ...values, 'auth-method': 'xfcc' }, [], xfcc), 3);
    assert.match(xfcc.lines.at(-1) ?? '', /auth method xfcc is not in authMethods jwt$/);
  });

  const usageCases: [string, OptionValues, RegExp][] = [
    ['no "="', { claim: ['environment'] }, /^--claim: expected name=value .* got "environment"$/],
    ['empty value', { claim: ['environment='] }, /^--claim: expected name=value/],
    ['empty name', { claim: ['=production'] }, /^--claim: expected name=value/],
    ['bad name', { claim: ['bad name=x'] }, /^--claim: expected name=value/],
    ['__proto__', { claim: ['__proto__=x'] }, /^--claim: expected name=value/],
    ['claims on an mtls caller', { claim: ['a=b'], 'auth-method': 'mtls' }, /^--claim: only jwt identities carry claims, but --auth-method is mtls$/],
    ['unknown auth method', { 'auth-method': 'JWT' }, /^--auth-method: expected mtls, jwt or xfcc, got "JWT"$/],
  ];
  for (const [name, values, message] of usageCases) {
    it(`explain refuses ${name} as a usage error`, async () => {
      await assert.rejects(command('policy', 'explain').run({ dir: 'tokens', principal: 'td/x', ...values }, [], fakeIO(cwd)), { name: 'UsageError', message });
    });
  }

  it('a malformed --claim exits 2 with one line pointing to the usage, through the CLI entry point', async () => {
    const io = fakeIO(cwd);
    assert.equal(await runCli(['policy', 'explain', '--dir', join(cwd, 'tokens'), '--principal', 'td/x', '--claim', 'nope'], io), 2);
    assert.equal(io.errors.length, 1);
    assert.match(io.errors[0]!, /^meshgate policy explain: --claim: expected name=value .* \(see 'meshgate policy explain --help'\)$/);
  });

  it('explain --firestore-path prints the decision, the service account and the trace', async () => {
    const io = fakeIO(cwd);
    const values = { dir: 'firestore', principal: 'cluster.local/ns/shop/sa/orders', 'firestore-path': 'orders/o1/items', operation: 'read' };
    assert.equal(await command('policy', 'explain').run(values, [], io), 0);
    assert.deepEqual(io.lines, [
      'decision: ALLOW',
      'rule:     orders-firestore/orders-read',
      'account:  orders@shop-prod.iam.gserviceaccount.com',
      'reason:   allowed by rule orders-firestore/orders-read for Firestore read on collections orders/*, orders/*/items/* in databases (default) as service account orders@shop-prod.iam.gserviceaccount.com',
      '',
      'RULE                          ACTION  MATCHED  WHY',
      'deny-staging/0                DENY    no       namespace shop is not in namespaces staging',
      'orders-firestore/orders-read  ALLOW   yes      decides: for Firestore read on collections orders/*, orders/*/items/* in databases (default) as service account orders@shop-prod.iam.gserviceaccount.com',
      'orders-firestore/analytics    ALLOW   no       the caller matches, but Firestore database (default) is not in databases analytics-db',
    ]);
  });

  it('explain --firestore-path takes collection groups, the root and another database', async () => {
    const run = async (values: OptionValues) => {
      const io = fakeIO(cwd);
      const code = await command('policy', 'explain').run({ dir: 'firestore', principal: 'cluster.local/ns/shop/sa/orders', ...values }, [], io);
      return { code, lines: io.lines };
    };
    const group = await run({ 'firestore-path': 'orders/o1/**/items', operation: 'read' });
    assert.equal(group.code, 3);
    assert.equal(group.lines[2], 'account:  -');
    assert.match(group.lines.join('\n'), /do not cover the collection group items under orders\/o1: it can reach orders\/o1\/\{any\}\/\{any\}\/items\/\{any\}/);
    const root = await run({ 'firestore-path': '/', operation: 'admin', 'firestore-database': 'analytics-db' });
    assert.equal(root.code, 0);
    assert.equal(root.lines[1], 'rule:     orders-firestore/analytics');
    const write = await run({ 'firestore-path': 'orders/o1', operation: 'write' });
    assert.equal(write.code, 3);
    assert.match(write.lines[3] ?? '', /^reason: {3}no ALLOW rule matches spiffe:\/\/cluster\.local\/ns\/shop\/sa\/orders for Firestore write on document orders\/o1 in database \(default\)/);
  });

  it('explain --firestore-path takes a subtree (a last "**"), "**" being the whole database', async () => {
    const run = async (path: string, database?: string) => {
      const io = fakeIO(cwd);
      const values = { dir: 'firestore', principal: 'cluster.local/ns/shop/sa/orders', 'firestore-path': path, operation: 'read', ...(database === undefined ? {} : { 'firestore-database': database }) };
      return { code: await command('policy', 'explain').run(values, [], io), text: io.lines.join('\n') };
    };
    const orders = await run('orders/o1/**');
    assert.equal(orders.code, 3);
    assert.match(orders.text, /for Firestore read on subtree beneath orders\/o1 in database \(default\); add one to the policy directory: .*such as "orders\/o1\/\*\*" or "\*\*"/);
    assert.match(orders.text, /do not cover the subtree beneath orders\/o1: it can reach orders\/o1\/\{any\}\/\{any\}/);
    const everything = await run('**', 'analytics-db');
    assert.equal(everything.code, 0);
    assert.match(everything.text, /rule: {5}orders-firestore\/analytics/);
    await assert.rejects(run('orders/**'), { name: 'UsageError', message: /^--firestore-path: path "orders\/\*\*" is not a subtree/ });
  });

  const firestoreUsage: [string, OptionValues, RegExp][] = [
    ['--operation without --firestore-path', { operation: 'read' }, /^--operation needs --firestore-path$/],
    ['--firestore-database without --firestore-path', { 'firestore-database': 'x' }, /^--firestore-database needs --firestore-path$/],
    ['--firestore-path without --operation', { 'firestore-path': 'a/b' }, /^--operation is required with --firestore-path/],
    ['an unknown operation', { 'firestore-path': 'a/b', operation: 'get' }, /^--operation: expected read, write or admin, got "get"$/],
    ['--database with --firestore-path', { 'firestore-path': 'a/b', operation: 'read', database: 'shop' }, /^--database names a MariaDB database/],
    ['a malformed path', { 'firestore-path': 'a//b', operation: 'read' }, /^--firestore-path: path "a\/\/b" has an empty segment$/],
    ['a misplaced group marker', { 'firestore-path': 'a/**/b/c', operation: 'read' }, /^--firestore-path: .*is not a collection group/],
  ];
  for (const [name, values, message] of firestoreUsage) {
    it(`explain refuses ${name} as a usage error`, async () => {
      await assert.rejects(command('policy', 'explain').run({ dir: 'firestore', principal: 'td/x', ...values }, [], fakeIO(cwd)), { name: 'UsageError', message });
    });
  }

  it('explain --help documents the Firestore options', async () => {
    const io = fakeIO(cwd);
    assert.equal(await runCli(['policy', 'explain', '--help'], io), 0);
    for (const option of Object.keys(command('policy', 'explain').options)) assert.match(io.lines.join('\n'), new RegExp(`--${option}\\b`));
  });

  it('explain fails with MG_POLICY_INVALID on a broken directory', async () => {
    await assert.rejects(command('policy', 'explain').run({ dir: 'broken', principal: 'td/ns/a/sa/b' }, [], fakeIO(cwd)), {
      code: 'MG_POLICY_INVALID',
    });
  });
});
