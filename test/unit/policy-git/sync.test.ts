/**
 * The git sync against real repositories on disk (git and ssh-keygen, no mocks): a pushed
 * commit changes the decision, a broken or unsigned one is refused once and the policy kept,
 * a force-push is followed, a dead remote is retried, hooks never run.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { startGitPolicySync, type GitPolicySync, type GitPolicySyncOptions } from '../../../src/policy-git/index.ts';
import { captureLog } from '../../helpers/log.ts';
import { BROKEN, ordersPolicy, PolicyRepo, recordingApply } from '../../helpers/policy-repo.ts';

const repos: PolicyRepo[] = [];
const syncs: GitPolicySync[] = [];
afterEach(async () => {
  await Promise.all(syncs.splice(0).map((s) => s.stop()));
  for (const repo of repos.splice(0)) repo.remove();
});

function newRepo(): PolicyRepo {
  const repo = new PolicyRepo();
  repos.push(repo);
  return repo;
}

function optionsFor(repo: PolicyRepo, extra: Partial<GitPolicySyncOptions> = {}): GitPolicySyncOptions {
  return { url: repo.url, ref: 'main', path: 'policy', intervalMs: 0, timeoutMs: 5_000, workDir: repo.workDir, ...extra };
}

async function start(...args: Parameters<typeof startGitPolicySync>): Promise<GitPolicySync> {
  const sync = await startGitPolicySync(...args);
  syncs.push(sync);
  return sync;
}

describe('policy from git', { timeout: 60_000 }, () => {
  it('applies the pushed commit, with the commit id as the policy version, and follows the next push', { timeout: 10_000 }, async () => {
    const repo = newRepo();
    const first = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_writer'), 'README.md': 'not policy' });
    const recorded = recordingApply();
    const { log, lines } = captureLog();
    const sync = await start(optionsFor(repo), recorded.apply, log);
    assert.equal(sync.lastCommit, first);
    assert.equal(recorded.roleOfOrders(), 'shop_writer');
    assert.equal(recorded.taken.at(-1)?.version, first);
    assert.deepEqual(await sync.syncNow(), { status: 'unchanged', commit: first });

    const second = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_reader') });
    assert.deepEqual(await sync.syncNow(), { status: 'applied', commit: second, previous: first });
    assert.equal(recorded.roleOfOrders(), 'shop_reader');
    assert.equal(recorded.taken.at(-1)?.version, second);
    assert.equal(sync.lastCommit, second);
    assert.equal(recorded.taken.length, 2);
    assert.deepEqual(lines.filter((l) => l.message === 'policy commit applied').map((l) => l['commit']), [first, second]);
    // Only the commit in force stays checked out.
    assert.deepEqual(readdirSync(join(repo.workDir, 'checkouts')), [second]);
  });

  it('refuses a broken commit once, keeps the old policy, and takes a later good commit', { timeout: 10_000 }, async () => {
    const repo = newRepo();
    const good = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_writer') });
    const recorded = recordingApply();
    const { log, lines } = captureLog();
    const sync = await start(optionsFor(repo), recorded.apply, log);

    const broken = repo.commit({ 'policy/orders.yaml': BROKEN });
    for (let i = 0; i < 3; i++) {
      const outcome = await sync.syncNow();
      assert.equal(outcome.status, 'refused');
      assert.equal(outcome.status === 'refused' && outcome.commit, broken);
      assert.match(outcome.status === 'refused' ? outcome.reason : '', /MAYBE|action/);
    }
    assert.equal(sync.lastCommit, good);
    assert.equal(recorded.roleOfOrders(), 'shop_writer');
    const refusals = lines.filter((l) => l.message.startsWith('policy commit refused'));
    assert.equal(refusals.length, 1, 'logged once, not at every sync');
    assert.equal(refusals[0]?.['commit'], broken);
    assert.equal(refusals[0]?.['inForce'], good);
    assert.equal(refusals[0]?.level, 'error');

    const fixed = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_reader') });
    assert.deepEqual(await sync.syncNow(), { status: 'applied', commit: fixed, previous: good });
    assert.equal(recorded.roleOfOrders(), 'shop_reader');
  });

  it('refuses a commit without the policy path, and starts from nothing only with a usable commit', { timeout: 10_000 }, async () => {
    const repo = newRepo();
    repo.commit({ 'other/orders.yaml': ordersPolicy('shop_writer') });
    await assert.rejects(start(optionsFor(repo), recordingApply().apply, captureLog().log), (error: unknown) => {
      assert.ok(isMeshgateError(error) && error.code === 'MG_POLICY_INVALID', String(error));
      assert.match(error.message, /policy is not a directory at this commit/);
      return true;
    });
    const broken = newRepo();
    broken.commit({ 'policy/orders.yaml': BROKEN });
    await assert.rejects(start(optionsFor(broken), recordingApply().apply, captureLog().log), /MG_POLICY_INVALID|MAYBE/);
  });

  it('follows the ref when it is moved back or its history rewritten, and says so', { timeout: 10_000 }, async () => {
    const repo = newRepo();
    const first = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_writer') });
    const recorded = recordingApply();
    const { log, lines } = captureLog();
    const sync = await start(optionsFor(repo), recorded.apply, log);
    const second = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_reader') });
    await sync.syncNow();

    repo.git('reset', '--quiet', '--hard', first);
    repo.git('push', '--quiet', '--force', 'origin', 'HEAD:main');
    assert.deepEqual(await sync.syncNow(), { status: 'applied', commit: first, previous: second });
    assert.equal(recorded.roleOfOrders(), 'shop_writer');
    assert.ok(lines.some((l) => l.level === 'warn' && /moved back to an older commit/.test(l.message) && l['commit'] === first));

    // A sibling of `second`: neither ancestor nor descendant of the commit in force once it is `second` again.
    repo.git('reset', '--quiet', '--hard', second);
    repo.git('push', '--quiet', '--force', 'origin', 'HEAD:main');
    await sync.syncNow();
    repo.git('reset', '--quiet', '--hard', first);
    const sibling = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_auditor') }, { message: 'rewritten' });
    assert.deepEqual(await sync.syncNow(), { status: 'applied', commit: sibling, previous: second });
    assert.ok(lines.some((l) => l.level === 'warn' && /history rewritten/.test(l.message) && l['commit'] === sibling));
    assert.equal(recorded.roleOfOrders(), 'shop_auditor');
  });

  it('retries an unreachable remote, says so once, and starts again from the last applied commit after a restart', { timeout: 10_000 }, async () => {
    const repo = newRepo();
    const first = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_writer') });
    const recorded = recordingApply();
    const { log, lines } = captureLog();
    const sync = await start(optionsFor(repo), recorded.apply, log);
    const moved = `${repo.origin}.away`;
    renameSync(repo.origin, moved);
    for (let i = 0; i < 3; i++) assert.equal((await sync.syncNow()).status, 'failed');
    assert.equal(lines.filter((l) => l.message.startsWith('policy git sync failed')).length, 1);
    assert.equal(recorded.roleOfOrders(), 'shop_writer');

    // A restart while the remote is down: the commit applied before, from meshgate's own repository.
    await sync.stop();
    const again = recordingApply();
    const restarted = await start(optionsFor(repo), again.apply, log);
    assert.equal(restarted.lastCommit, first);
    assert.equal(again.roleOfOrders(), 'shop_writer');
    assert.ok(lines.some((l) => l.level === 'warn' && /commit applied before this restart/.test(l.message)));

    renameSync(moved, repo.origin);
    const second = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_reader') });
    assert.deepEqual(await restarted.syncNow(), { status: 'applied', commit: second, previous: first });
    assert.ok(lines.some((l) => l.message === 'policy git sync works again'));
  });

  it('fails to start with MG_POLICY_GIT_UNAVAILABLE when the remote cannot be read and nothing was applied before', { timeout: 10_000 }, async () => {
    const repo = newRepo();
    const options = optionsFor(repo, { url: `file://${repo.root}/no-such.git` });
    await assert.rejects(start(options, recordingApply().apply, captureLog().log), (error: unknown) => {
      assert.ok(isMeshgateError(error) && error.code === 'MG_POLICY_GIT_UNAVAILABLE', String(error));
      assert.match(error.message, /no-such\.git/);
      return true;
    });
    repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_writer') });
    await assert.rejects(start(optionsFor(repo, { ref: 'no-such-branch' }), recordingApply().apply, captureLog().log), /MG_POLICY_GIT_UNAVAILABLE|no-such-branch/);
  });

  it('fetches on its own at the interval, with the timer not keeping the process alive', { timeout: 10_000 }, async () => {
    const repo = newRepo();
    repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_writer') });
    const recorded = recordingApply();
    const sync = await start(optionsFor(repo, { intervalMs: 100 }), recorded.apply, captureLog().log);
    const second = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_reader') });
    const deadline = Date.now() + 5_000;
    while (sync.lastCommit !== second && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(sync.lastCommit, second);
    assert.equal(recorded.roleOfOrders(), 'shop_reader');
  });

  it('a syncNow during a sync is answered by one that starts after it', { timeout: 10_000 }, async () => {
    const repo = newRepo();
    repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_writer') });
    const recorded = recordingApply();
    const sync = await start(optionsFor(repo), recorded.apply, captureLog().log);
    const second = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_reader') });
    const [a, b, c] = await Promise.all([sync.syncNow(), sync.syncNow(), sync.syncNow()]);
    assert.equal(a.status, 'applied');
    assert.deepEqual(b, { status: 'unchanged', commit: second });
    assert.deepEqual(c, b);
    assert.equal(recorded.taken.length, 2);
  });

  it('never runs hooks: not in its own repository, not from the fetched one, no submodules', { timeout: 10_000 }, async () => {
    const repo = newRepo();
    const marker = join(repo.root, 'hook-ran');
    const hook = `#!/bin/sh\necho "$0" >> ${marker}\n`;
    // Hooks planted in meshgate's own repository, as if something had written them there.
    const gitDir = join(repo.workDir, 'repo.git');
    mkdirSync(repo.workDir, { recursive: true });
    repo.gitIn(repo.root, 'init', '--quiet', '--bare', gitDir);
    const names = ['reference-transaction', 'post-checkout', 'post-index-change', 'post-merge', 'pre-auto-gc', 'fsmonitor-watchman'];
    for (const name of names) {
      writeFileSync(join(gitDir, 'hooks', name), hook);
      chmodSync(join(gitDir, 'hooks', name), 0o755);
    }
    // The control: git does run them when not told otherwise.
    repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_writer') });
    repo.gitIn(repo.root, `--git-dir=${gitDir}`, 'fetch', '--quiet', repo.url, 'main:refs/control');
    assert.ok(existsSync(marker), 'the planted hook runs for a plain git fetch');
    renameSync(marker, `${marker}.control`);

    // And what a repository's author might try: a hooks directory and a submodule in the tree.
    writeFileSync(join(repo.work, '.gitmodules'), `[submodule "evil"]\n\tpath = policy/evil\n\turl = file://${repo.origin}\n`);
    // A symlink out of the tree is checked out as a small file holding its target, never followed.
    symlinkSync('/etc/hostname', join(repo.work, 'policy', 'link.txt'));
    const last = repo.commit({ 'policy/.githooks/post-checkout': hook }, { message: 'hooks, a submodule and a symlink' });

    const recorded = recordingApply();
    const sync = await start(optionsFor(repo), recorded.apply, captureLog().log);
    assert.equal(sync.lastCommit, last);
    await sync.syncNow();
    assert.ok(!existsSync(marker), 'no hook ran during the sync');
    const dir = join(repo.workDir, 'checkouts', last);
    assert.ok(!existsSync(join(dir, 'evil', 'orders.yaml')), 'the submodule was not cloned');
    assert.ok(lstatSync(join(dir, 'link.txt')).isFile());
    assert.equal(readFileSync(join(dir, 'link.txt'), 'utf8'), '/etc/hostname');
    assert.equal(recorded.roleOfOrders(), 'shop_writer');
  });
});
