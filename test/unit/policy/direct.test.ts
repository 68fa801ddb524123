/**
 * Direct credentials (`creds issue`, `POST /v1/creds`) are a request of their own: only an
 * ALLOW target that says `direct: true` grants them, while a DENY still wins and sessions
 * through meshgate match every ALLOW target as before.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../../src/cli/main.ts';
import { captureIO } from '../../helpers/cli.ts';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { loadPolicyDocuments } from '../../../src/policy/loader.ts';
import { subjectFromPrincipal } from '../../../src/policy/subject.ts';
import type { CompiledPolicy, MysqlRequest } from '../../../src/policy/types.ts';

const HEAD = 'apiVersion: meshgate.dev/v1alpha1\nkind: AccessPolicy\n';
const ORDERS = 'spiffe://cluster.local/ns/shop/sa/orders';
const CI = 'spiffe://cluster.local/ns/ci/sa/deploy';
const STAGING = 'spiffe://cluster.local/ns/staging/sa/deploy';

const POLICY = `${HEAD}metadata: { name: sessions }
spec:
  action: ALLOW
  rules:
    - id: orders
      from: [{ source: { principals: ["cluster.local/ns/shop/sa/orders"] } }]
      to: [{ mariadb: { databases: [shop], role: shop_rw } }]
---
${HEAD}metadata: { name: ci }
spec:
  action: ALLOW
  rules:
    - id: reader
      from: [{ source: { namespaces: [ci, staging] } }]
      to: [{ mariadb: { databases: [shop], role: shop_ro } }]
    - id: migrations
      from: [{ source: { namespaces: [ci, staging] } }]
      to:
        - mariadb: { databases: [shop], role: shop_migrator, direct: true }
        - mariadb: { databases: [other], role: other_ro, direct: false }
---
${HEAD}metadata: { name: deny-staging }
spec:
  action: DENY
  rules:
    - from: [{ source: { namespaces: [staging] } }]
`;

const policy: CompiledPolicy = loadPolicyDocuments([{ name: 'policy/p.yaml', text: POLICY }]);

function ask(principal: string, database: string | null, direct: boolean) {
  const request: MysqlRequest = direct ? { engine: 'mysql', database, direct: true } : { engine: 'mysql', database };
  return policy.evaluate(subjectFromPrincipal(principal), request);
}

describe('policy: direct credentials need a rule that says direct: true', () => {
  it('a session rule does not grant direct credentials; the refusal says what is missing', () => {
    const decision = ask(ORDERS, 'shop', true);
    assert.equal(decision.allow, false);
    assert.equal(decision.ruleId, null);
    assert.match(decision.reason, /^no ALLOW rule matches spiffe:\/\/cluster\.local\/ns\/shop\/sa\/orders for direct credentials to database shop: a rule must allow direct access/);
    assert.match(decision.reason, /to\.mariadb\.direct: true/);
    // The same caller's sessions through meshgate are untouched.
    assert.deepEqual([ask(ORDERS, 'shop', false).allow, ask(ORDERS, 'shop', false).role], [true, 'shop_rw']);
  });

  it('the first ALLOW rule whose target says direct: true decides, in its role', () => {
    const decision = ask(CI, 'shop', true);
    assert.deepEqual([decision.allow, decision.ruleId, decision.role], [true, 'ci/migrations', 'shop_migrator']);
    // A session is decided by the first rule in file order, direct or not.
    assert.deepEqual([ask(CI, 'shop', false).ruleId, ask(CI, 'shop', false).role], ['ci/reader', 'shop_ro']);
  });

  it('direct: false is the default, written or not', () => {
    assert.equal(ask(CI, 'other', true).allow, false);
    assert.deepEqual([ask(CI, 'other', false).allow, ask(CI, 'other', false).role], [true, 'other_ro']);
  });

  it('a DENY rule wins over direct: true', () => {
    const decision = ask(STAGING, 'shop', true);
    assert.deepEqual([decision.allow, decision.ruleId], [false, 'deny-staging/0']);
    assert.match(decision.reason, /^denied by rule deny-staging\/0/);
  });

  it('explain says, rule by rule, that a target does not allow direct credentials', () => {
    const explanation = policy.explain(subjectFromPrincipal(ORDERS), { engine: 'mysql', database: 'shop', direct: true });
    const orders = explanation.trace.find((t) => t.ruleId === 'sessions/orders');
    assert.ok(orders !== undefined);
    assert.equal(orders.matched, false);
    assert.match(orders.why, /the caller matches, but the target does not allow direct credentials \(no direct: true\)/);
    const ci = policy.explain(subjectFromPrincipal(CI), { engine: 'mysql', database: 'shop', direct: true });
    assert.match(ci.trace.find((t) => t.ruleId === 'ci/migrations')!.why, /^decides: as role shop_migrator/);
  });
});

describe('meshgate policy explain --direct', () => {
  it('answers for direct credentials, exit 3 when only sessions are allowed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-policy-direct-'));
    try {
      await writeFile(join(dir, 'p.yaml'), POLICY);
      const explain = async (...args: string[]) => {
        const io = captureIO();
        const code = await runCli(['policy', 'explain', '--dir', dir, ...args], io);
        return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
      };
      const session = await explain('--principal', ORDERS, '--database', 'shop');
      assert.equal(session.code, 0, session.err);
      assert.doesNotMatch(session.out, /^direct:/m);
      const denied = await explain('--principal', ORDERS, '--database', 'shop', '--direct');
      assert.equal(denied.code, 3);
      assert.match(denied.out, /^direct: {3}no direct credentials$/m);
      assert.match(denied.out, /^sessions\/orders +ALLOW +no +the caller matches, but the target does not allow direct credentials/m);
      const allowed = await explain('--principal', CI, '--database', 'shop', '--direct');
      assert.equal(allowed.code, 0);
      assert.match(allowed.out, /^rule: {5}ci\/migrations$/m);
      assert.match(allowed.out, /^direct: {3}direct credentials allowed$/m);
      const firestore = await explain('--principal', CI, '--firestore-path', 'orders/o1', '--operation', 'read', '--direct');
      assert.equal(firestore.code, 2);
      assert.match(firestore.err, /--direct asks about MariaDB credentials/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('policy: the direct field is validated', () => {
  function problem(text: string): string {
    try {
      loadPolicyDocuments([{ name: 'policy/ci.yaml', text }]);
    } catch (error) {
      if (!isMeshgateError(error)) throw error;
      assert.equal(error.code, 'MG_POLICY_INVALID');
      return error.message;
    }
    return assert.fail('expected the policy to be rejected');
  }
  const allow = (target: string) => `${HEAD}metadata: { name: ci }\nspec:\n  action: ALLOW\n  rules:\n    - to:\n        - mariadb:\n            role: r\n${target}`;

  it('a string for the boolean names the file, the field and the line', () => {
    const message = problem(allow('            direct: "yes"\n'));
    assert.match(message, /^policy\/ci\.yaml doc 1: spec\.rules\[0\]\.to\[0\]\.mariadb\.direct: expected true or false, got the string "yes" \(line 10\)$/m);
  });

  it('direct on a DENY rule is refused: a DENY refuses sessions and direct credentials alike', () => {
    const text = `${HEAD}metadata: { name: d }\nspec:\n  action: DENY\n  rules:\n    - to:\n        - mariadb:\n            databases: [shop]\n            direct: true\n`;
    assert.match(problem(text), /spec\.rules\[0\]\.to\[0\]\.mariadb\.direct: not allowed on DENY rules: a DENY rule refuses sessions and direct credentials alike \(line 10\)/);
  });

  it('a misspelt key lists direct among the allowed ones', () => {
    assert.match(problem(allow('            drect: true\n')), /mariadb\.drect: unknown field; allowed here: databases, role, allowLocalInfile, direct, auditParameters, traceQueryText/);
  });
});
