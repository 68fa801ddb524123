/** policy.git in the config file: defaults, paths, and the mistakes an operator makes, named with their line. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfigFile } from '../../../src/config/load.ts';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { gitPolicyOptions } from '../../../src/policy-git/index.ts';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJMtD361fgH1gsP1ymwMVb9vQLBJuBggX2UYRS3nEFSg release@example.com';

const invalid = (pattern: RegExp) => (error: unknown) => {
  assert.ok(isMeshgateError(error) && error.code === 'MG_CONFIG_INVALID', String(error));
  assert.match(error.message, pattern);
  return true;
};

describe('config: policy.git', () => {
  let dir: string;
  const base = `
listener: { port: 3307, tls: { cert: tls/server.crt, key: tls/server.key } }
trust: { bundles: [tls/bundle.pem], trustDomains: [cluster.local] }
upstream:
  roles:
    shop_writer: { user: mg_shop_writer, password: { env: SHOP_WRITER_PASSWORD } }
`;
  const write = async (policy: string, extra = '') => {
    const path = join(dir, 'meshgate.yaml');
    await writeFile(path, `${base}${policy}\n${extra}`);
    return path;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-config-git-'));
    await mkdir(join(dir, 'tls'));
    await mkdir(join(dir, 'policy'));
    for (const f of ['server.crt', 'server.key', 'bundle.pem']) await writeFile(join(dir, 'tls', f), 'x');
    await writeFile(join(dir, 'signers.pub'), `# release\n${KEY}\n`);
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('takes a url and fills the rest: ref main, the repository root, 60s, the work directory beside the leases', async () => {
    const config = loadConfigFile(await write('policy: { git: { url: "ssh://git@git.example.com/acme/db-policy.git" } }'));
    assert.equal(config.policy.dir, undefined);
    assert.deepEqual(config.policy.git, {
      url: 'ssh://git@git.example.com/acme/db-policy.git',
      ref: 'main',
      path: '.',
      interval: '60s',
      timeout: '60s',
      workDir: join(dir, 'state', 'policy-git'),
    });
    const options = gitPolicyOptions(config.policy.git!, {});
    assert.equal(options.intervalMs, 60_000);
    assert.equal(options.trustedKeys, undefined);
  });

  it('takes trusted keys inline or from a file (resolved against the config folder)', async () => {
    const inline = loadConfigFile(await write(`policy:\n  git:\n    url: git@github.com:acme/db-policy.git\n    ref: release/prod\n    path: policy\n    interval: 5m\n    workDir: work\n    trustedKeys: ["${KEY}"]`));
    assert.deepEqual(gitPolicyOptions(inline.policy.git!, {}).trustedKeys, [KEY]);
    assert.equal(inline.policy.git?.workDir, join(dir, 'work'));
    assert.equal(gitPolicyOptions(inline.policy.git!, {}).intervalMs, 300_000);
    const fromFile = loadConfigFile(await write('policy: { git: { url: "file:///srv/git/policy.git", trustedKeys: { file: signers.pub } } }'));
    assert.deepEqual(fromFile.policy.git?.trustedKeys, { file: join(dir, 'signers.pub') });
    assert.deepEqual(gitPolicyOptions(fromFile.policy.git!, {}).trustedKeys, [KEY]);
    const missing = await write('policy: { git: { url: "file:///srv/git/policy.git", trustedKeys: { file: nope.pub } } }');
    assert.throws(() => loadConfigFile(missing), invalid(/policy\.git\.trustedKeys\.file: nope\.pub .* does not exist/));
  });

  it('one place for the policy: dir or git, not both, not neither', async () => {
    const both = await write('policy: { dir: policy, git: { url: "file:///srv/git/policy.git" } }');
    assert.throws(() => loadConfigFile(both), invalid(/policy\.git: dir and git cannot be used together/));
    const neither = await write('policy: {}');
    assert.throws(() => loadConfigFile(neither), invalid(/policy\.dir: required: where the policy comes from: \{ dir: policy \} or \{ git:/));
  });

  it('refuses what git could read as an option, a range or a path out of the repository', async () => {
    for (const [policy, pattern] of [
      ['policy: { git: { url: "--upload-pack=touch /tmp/x" } }', /policy\.git\.url: expected a git URL/],
      ['policy: { git: { url: "ext::sh -c touch% /tmp/x" } }', /policy\.git\.url: expected a git URL/],
      ['policy: { git: { url: "file:///srv/p.git", ref: "-main" } }', /policy\.git\.ref: expected a branch, tag or ref name/],
      ['policy: { git: { url: "file:///srv/p.git", ref: "main..other" } }', /policy\.git\.ref/],
      ['policy: { git: { url: "file:///srv/p.git", path: "../etc" } }', /policy\.git\.path: expected a relative path inside the repository/],
      ['policy: { git: { url: "file:///srv/p.git", path: "/etc" } }', /policy\.git\.path/],
      ['policy: { git: { url: "file:///srv/p.git", interval: "1 minute" } }', /policy\.git\.interval: expected a duration/],
      ['policy: { git: { url: "file:///srv/p.git", interval: "0s" } }', /policy\.git\.interval: .*longer than zero/],
      ['policy: { git: { url: "file:///srv/p.git", trustedKeys: ["not a key"] } }', /policy\.git\.trustedKeys/],
    ] as const) {
      const path = await write(policy);
      assert.throws(() => loadConfigFile(path), invalid(pattern), policy);
    }
  });

  it('needs its own workDir when the state is in PostgreSQL', async () => {
    const path = await write('policy: { git: { url: "file:///srv/git/policy.git" } }', 'state: { postgres: { url: { env: PG } } }\n');
    assert.throws(() => loadConfigFile(path), invalid(/policy\.git: needs workDir with state\.postgres/));
  });
});
