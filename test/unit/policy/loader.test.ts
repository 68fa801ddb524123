import { after, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { loadPolicyDir, loadPolicyDocuments } from '../../../src/policy/loader.ts';
import { subjectFromPrincipal } from '../../../src/policy/subject.ts';
import type { Subject } from '../../../src/policy/types.ts';

const VALID = `apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: orders-read-write
spec:
  action: ALLOW
  rules:
    - id: shop-rw
      from:
        - source:
            principals: ["cluster.local/ns/shop/sa/orders"]
      to:
        - mariadb:
            databases: ["shop"]
            role: shop_writer
`;

/** The MG_POLICY_INVALID message for loading `text` as policy/orders.yaml. */
function problem(text: string, name = 'policy/orders.yaml'): string {
  try {
    loadPolicyDocuments([{ name, text }]);
  } catch (error) {
    if (!isMeshgateError(error)) throw error;
    assert.equal(error.code, 'MG_POLICY_INVALID');
    return error.message;
  }
  return assert.fail('expected the policy to be rejected');
}

describe('loader errors name the file, the document and the field', () => {
  const cases: [string, string, string][] = [
    [
      'missing role on an ALLOW target',
      VALID.replace('            role: shop_writer\n', ''),
      'policy/orders.yaml doc 1: spec.rules[0].to[0].mariadb.role: required for ALLOW rules',
    ],
    ['unknown key', VALID.replace('      from:', '      form: []\n      from:'), 'policy/orders.yaml doc 1: spec.rules[0].form: unknown field; allowed here: id, from, to'],
    ['misindented key', VALID.replace('            databases:', '          databases:').replace('            role:', '          role:'), 'spec.rules[0].to[0].databases: unknown field; allowed here: mariadb'],
    ['wrong action', VALID.replace('action: ALLOW', 'action: allow'), 'spec.action: expected "ALLOW", "DENY" or "AUDIT", got the string "allow"'],
    ['wrong kind', VALID.replace('kind: AccessPolicy', 'kind: AuthorizationPolicy'), 'doc 1: kind: expected "AccessPolicy"'],
    ['missing apiVersion', VALID.replace(/^apiVersion.*\n/, ''), 'doc 1: apiVersion: required: "meshgate.dev/v1alpha1"'],
    ['role with a backtick', VALID.replace('role: shop_writer', 'role: "shop`writer"'), 'spec.rules[0].to[0].mariadb.role: "shop`writer" must be a MariaDB role name'],
    ['role too long', VALID.replace('role: shop_writer', `role: ${'r'.repeat(65)}`), 'spec.rules[0].to[0].mariadb.role:'],
    ['glob in the middle', VALID.replace('"cluster.local/ns/shop/sa/orders"', '"cluster.local/*/sa/orders"'), 'spec.rules[0].from[0].source.principals[0]: "cluster.local/*/sa/orders": "*" may appear only'],
    ['empty list', VALID.replace('databases: ["shop"]', 'databases: []'), 'spec.rules[0].to[0].mariadb.databases: must not be empty; omit the field to match anything'],
    ['empty rules', VALID.replace(/ {2}rules:[\s\S]*$/, '  rules: []\n'), 'spec.rules: must not be empty'],
    ['string for boolean', VALID.replace('role: shop_writer', 'role: shop_writer\n            allowLocalInfile: "yes"'), 'allowLocalInfile: expected true or false, got the string "yes"'],
    ['null list', VALID.replace('      from:\n        - source:\n            principals: ["cluster.local/ns/shop/sa/orders"]\n', '      from:\n'), 'spec.rules[0].from: expected a list, got an empty value'],
    ['bad policy name', VALID.replace('name: orders-read-write', 'name: Orders_RW'), 'metadata.name: "Orders_RW" must be lower-case'],
    ['bad rule id', VALID.replace('id: shop-rw', 'id: "shop rw"'), 'spec.rules[0].id: "shop rw" must be letters'],
    ['ALLOW rule without to', VALID.replace(/ {6}to:[\s\S]*$/, ''), 'spec.rules[0].to: required for ALLOW rules'],
    ['role on a DENY rule', VALID.replace('action: ALLOW', 'action: DENY'), 'spec.rules[0].to[0].mariadb.role: not allowed on DENY rules'],
    ['empty source', VALID.replace('        - source:\n            principals: ["cluster.local/ns/shop/sa/orders"]', '        - source: {}'), 'spec.rules[0].from[0].source: names no field'],
    ['document is a list', '- a\n- b\n', 'policy/orders.yaml doc 1: expected a mapping, got a list'],
    ['YAML syntax error with its line', `${VALID}---\nkind: [AccessPolicy\nspec: 1\n`, 'policy/orders.yaml doc 2: YAML syntax error: '],
    ['duplicate YAML key', VALID.replace('kind: AccessPolicy', 'kind: AccessPolicy\nkind: AccessPolicy'), 'doc 1: YAML syntax error: Map keys must be unique at line 3'],
  ];
  for (const [name, text, expected] of cases) {
    it(name, () => {
      const message = problem(text);
      assert.ok(message.includes(expected), `message:\n${message}\nlacks:\n${expected}`);
    });
  }

  it('points at the line of the offending field', () => {
    assert.match(problem(VALID.replace('role: shop_writer', 'role: "a b"')), /mariadb\.role: .* \(line 15\)$/);
    assert.match(problem(VALID.replace('      from:', '      form: []\n      from:')), /spec\.rules\[0\]\.form: .* \(line 9\)$/);
  });

  it('YAML syntax errors carry the line number', () => {
    assert.match(problem(`${VALID}---\nkind: [AccessPolicy\nspec: 1\n`), /at line 1[89], column/);
  });

  it('numbers documents from 1, counting empty ones', () => {
    const message = problem(`---\n# nothing here yet\n---\n${VALID}---\n${VALID.replace('kind: AccessPolicy', 'kind: Nope')}`);
    assert.match(message, /^policy\/orders\.yaml doc 3: kind:/);
  });

  it('reports every problem, one per line', () => {
    const message = problem(VALID.replace('action: ALLOW', 'action: MAYBE').replace('kind: AccessPolicy', 'kind: X'));
    assert.match(message, /^2 problems in the policy:\n {2}.*kind:.*\n {2}.*spec\.action:/);
  });

  it('rejects duplicate policy names across files', () => {
    try {
      loadPolicyDocuments([
        { name: 'a.yaml', text: VALID },
        { name: 'b.yaml', text: VALID },
      ]);
      assert.fail('expected a duplicate-name error');
    } catch (error) {
      assert.match((error as Error).message, /^b\.yaml doc 1: metadata\.name: "orders-read-write" is already used by a\.yaml doc 1/);
    }
  });

  it('rejects duplicate rule ids, including an explicit id equal to another rule index', () => {
    const twoRules = `${VALID.replace('    - id: shop-rw\n', '    - id: "1"\n')}    - id: "1"\n      to: [{ mariadb: { role: r } }]\n`;
    assert.match(problem(twoRules), /spec\.rules\[1\]\.id: rule id "orders-read-write\/1" is already used by policy\/orders\.yaml doc 1 spec\.rules\[0\]/);
    const indexClash = `${VALID.replace('    - id: shop-rw\n      from', '    - from')}    - id: "0"\n      to: [{ mariadb: { role: r } }]\n`;
    assert.match(problem(indexClash), /rule id "orders-read-write\/0" is already used/);
  });

  it('refuses a policy with no documents', () => {
    assert.throws(() => loadPolicyDocuments([{ name: 'a.yaml', text: '# nothing yet\n' }], 'policy'), {
      code: 'MG_POLICY_INVALID',
      message: 'no policy documents in policy; nothing would be allowed',
    });
  });
});

describe('loadPolicyDir', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  const tempDir = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-policy-'));
    dirs.push(dir);
    return dir;
  };

  it('reads *.yaml and *.yml in sorted order and skips everything else', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'b.yml'), VALID.replace('orders-read-write', 'b').replace('role: shop_writer', 'role: from_b'));
    await writeFile(join(dir, 'a.yaml'), VALID.replace('orders-read-write', 'a').replace('role: shop_writer', 'role: from_a'));
    await writeFile(join(dir, 'README.md'), 'not policy');
    await writeFile(join(dir, '.hidden.yaml'), 'not: [valid');
    await mkdir(join(dir, 'sub.yaml'));
    const policy = await loadPolicyDir(dir);
    assert.deepEqual(policy.sources, [join(dir, 'a.yaml'), join(dir, 'b.yml')]);
    assert.deepEqual(policy.files.map((f) => [f.documents, f.rules]), [[1, 1], [1, 1]]);
    const subject = { spiffeId: 'spiffe://cluster.local/ns/shop/sa/orders', trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'orders', principal: 'cluster.local/ns/shop/sa/orders' };
    assert.equal(policy.evaluate(subject, { engine: 'mysql', database: 'shop' }).role, 'from_a');
  });

  it('follows symlinked files, as in a Kubernetes ConfigMap mount', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, '..data'));
    await writeFile(join(dir, '..data', 'orders.yaml'), VALID);
    await symlink(join(dir, '..data', 'orders.yaml'), join(dir, 'orders.yaml'));
    assert.equal((await loadPolicyDir(dir)).ruleCount, 1);
  });

  it('names the directory as given, relative to cwd', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'policy'));
    await writeFile(join(dir, 'policy', 'orders.yaml'), VALID.replace('role: shop_writer', 'role: "x y"'));
    await assert.rejects(loadPolicyDir('policy', { cwd: dir }), { message: /^policy\/orders\.yaml doc 1: spec\.rules\[0\]\.to\[0\]\.mariadb\.role:/ });
  });

  it('refuses an empty directory', async () => {
    const dir = await tempDir();
    await assert.rejects(loadPolicyDir(dir), { code: 'MG_POLICY_INVALID', message: `no policy documents in ${dir}; nothing would be allowed` });
  });

  it('refuses a missing directory with a coded error', async () => {
    const dir = await tempDir();
    await assert.rejects(loadPolicyDir(join(dir, 'nope')), { code: 'MG_POLICY_INVALID', message: /cannot read policy directory .*nope \(ENOENT\)/ });
  });

  it('loads the shipped example directory', async () => {
    const policy = await loadPolicyDir('deploy/examples/policy');
    assert.ok(policy.ruleCount >= 3);
  });

  it('the CI example lets only the production deploy job of acme/shop migrate shop', async () => {
    const policy = await loadPolicyDir('deploy/examples/policy');
    // What the github-actions mapping produces for a job in environment "production".
    const job = {
      ...subjectFromPrincipal('spiffe://ci.example/github/acme/shop/env/production'),
      authMethod: 'jwt',
      claims: {
        repository: 'acme/shop',
        environment: 'production',
        ref: 'refs/heads/main',
        event_name: 'push',
        job_workflow_ref: 'acme/shop/.github/workflows/deploy.yml@refs/heads/main',
      },
    };
    const decide = (subject: Subject, database = 'shop') => policy.evaluate(subject, { engine: 'mysql', database });
    assert.deepEqual(
      { ...decide(job) },
      { allow: true, ruleId: 'ci-shop-deploy/migrate-production', role: 'shop_migrator', allowLocalInfile: false, auditParameters: 'types', googleServiceAccount: null, traceQueryText: null, serviceClass: 'default', policyVersion: policy.version, reason: 'allowed by rule ci-shop-deploy/migrate-production as role shop_migrator' },
    );
    assert.equal(decide(job, 'reporting_eu').allow, false);
    const otherWorkflow = { ...job, claims: { ...job.claims, job_workflow_ref: 'acme/shop/.github/workflows/lint.yml@refs/heads/main' } };
    assert.equal(decide(otherWorkflow).allow, false);
    const pullRequest = { ...job, claims: { ...job.claims, event_name: 'pull_request' } };
    assert.equal(decide(pullRequest).ruleId, 'ci-deny-pull-requests/pull-request-events');
    // A branch named "production" maps to .../ref/heads/production, not the environment.
    const branch = { ...job, ...subjectFromPrincipal('ci.example/github/acme/shop/ref/heads/production') };
    assert.equal(decide(branch).allow, false);
    // The same principal over mTLS (no token, no claims) is not the job.
    assert.equal(decide({ ...subjectFromPrincipal('ci.example/github/acme/shop/env/production'), authMethod: 'mtls' }).allow, false);
  });
});

describe('the policy version', () => {
  it('is a digest of the files: the same texts give the same version wherever they live, a change gives another', () => {
    const version = (name: string, text: string) => loadPolicyDocuments([{ name, text }]).version;
    const here = version('policy/orders.yaml', VALID);
    assert.match(here, /^[0-9a-f]{12}$/);
    assert.equal(version('/etc/meshgate/policy/orders.yaml', VALID), here);
    assert.notEqual(version('policy/orders.yaml', VALID.replace('shop_writer', 'shop_reader')), here);
    assert.notEqual(version('policy/other.yaml', VALID), here);
  });
});
