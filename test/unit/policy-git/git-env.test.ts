/** How git is run: an environment that cannot point it elsewhere, and URLs that cannot be options. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../../src/log.ts';
import { displayUrl, normalizePath, startGitPolicySync } from '../../../src/policy-git/index.ts';
import { gitEnvironment, SAFE_CONFIG } from '../../../src/policy-git/git.ts';

describe('running git', () => {
  it('drops GIT_* variables that point elsewhere, keeps how ssh is run, never prompts', () => {
    const env = gitEnvironment({ PATH: '/usr/bin', GIT_DIR: '/elsewhere', GIT_INDEX_FILE: '/x', GIT_CONFIG_PARAMETERS: "'core.hooksPath'='/tmp/h'", GIT_SSH_COMMAND: 'ssh -i key', HOME: '/home/mg' });
    assert.equal(env['GIT_DIR'], undefined);
    assert.equal(env['GIT_INDEX_FILE'], undefined);
    assert.equal(env['GIT_CONFIG_PARAMETERS'], undefined);
    assert.equal(env['GIT_SSH_COMMAND'], 'ssh -i key');
    assert.equal(env['GIT_TERMINAL_PROMPT'], '0');
    assert.equal(env['GIT_CONFIG_GLOBAL'], '/dev/null');
    assert.equal(env['HOME'], '/home/mg');
    assert.equal(gitEnvironment({})['GIT_SSH_COMMAND'], 'ssh -o BatchMode=yes');
    assert.equal(gitEnvironment({})['PATH'], process.env['PATH']);
  });

  it('turns hooks, submodules and the ext transport off for every command', () => {
    const settings = SAFE_CONFIG.filter((_, i) => i % 2 === 1);
    for (const setting of ['core.hooksPath=/dev/null', 'submodule.recurse=false', 'protocol.allow=never', 'core.symlinks=false']) assert.ok(settings.includes(setting), setting);
    assert.ok(!settings.includes('protocol.ext.allow=always'));
  });

  it('refuses a URL git could read as an option or a command, before running anything', async () => {
    const options = { ref: 'main', path: '.', intervalMs: 0, timeoutMs: 1000, workDir: '/nonexistent/never-created' };
    for (const url of ['--upload-pack=touch /tmp/x', 'ext::sh -c touch% /tmp/x', '/srv/repo.git']) {
      await assert.rejects(startGitPolicySync({ ...options, url }, async () => {}, silentLogger), TypeError, url);
    }
    await assert.rejects(startGitPolicySync({ ...options, url: 'file:///srv/p.git', ref: '--force' }, async () => {}, silentLogger), TypeError);
  });

  it('shows URLs without a token and paths inside the repository', () => {
    assert.equal(displayUrl('https://x-access-token:ghp_secret@github.com/acme/p.git'), 'https://***@github.com/acme/p.git');
    assert.equal(displayUrl('ssh://git@host/p.git'), 'ssh://git@host/p.git');
    assert.equal(normalizePath('./policy/'), 'policy');
    assert.equal(normalizePath('.'), '');
    assert.throws(() => normalizePath('a/../../etc'), TypeError);
  });
});
