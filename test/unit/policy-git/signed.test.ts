/**
 * policy.git.trustedKeys: only commits signed (SSH signatures, gpg.format=ssh) by a trusted
 * key are applied, checked with git verify-commit against real ssh-keygen signatures.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { parseTrustedKeysText, startGitPolicySync, type GitPolicySync } from '../../../src/policy-git/index.ts';
import { captureLog } from '../../helpers/log.ts';
import { ordersPolicy, PolicyRepo, recordingApply } from '../../helpers/policy-repo.ts';

const repos: PolicyRepo[] = [];
const syncs: GitPolicySync[] = [];
afterEach(async () => {
  await Promise.all(syncs.splice(0).map((s) => s.stop()));
  for (const repo of repos.splice(0)) repo.remove();
});

describe('policy from git, signed commits only', { timeout: 60_000 }, () => {
  it('applies commits signed by a trusted key; refuses unsigned ones and those signed by another key', { timeout: 10_000 }, async () => {
    const repo = new PolicyRepo();
    repos.push(repo);
    const release = repo.sshKey('release');
    const other = repo.sshKey('intruder');
    const first = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_writer') }, { signingKey: release.privateKey });
    const recorded = recordingApply();
    const { log, lines } = captureLog();
    const options = { url: repo.url, ref: 'main', path: 'policy', intervalMs: 0, timeoutMs: 5_000, workDir: repo.workDir, trustedKeys: [release.publicKey] };
    const sync = await startGitPolicySync(options, recorded.apply, log);
    syncs.push(sync);
    assert.equal(sync.lastCommit, first);

    const unsigned = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_admin') });
    const outcome = await sync.syncNow();
    assert.deepEqual(outcome, { status: 'refused', commit: unsigned, reason: 'the commit is not signed; policy.git.trustedKeys requires a signature by a trusted SSH key' });

    const forged = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_admin') }, { signingKey: other.privateKey });
    const refused = await sync.syncNow();
    assert.equal(refused.status, 'refused');
    assert.match(refused.status === 'refused' ? refused.reason : '', /not by a key in policy.git.trustedKeys/);
    await sync.syncNow();
    assert.equal(recorded.roleOfOrders(), 'shop_writer');
    assert.equal(recorded.taken.length, 1, 'a refused signature never reaches apply');
    assert.deepEqual(lines.filter((l) => l.message.startsWith('policy commit refused')).map((l) => l['commit']), [unsigned, forged]);

    const signed = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_reader') }, { signingKey: release.privateKey });
    assert.deepEqual(await sync.syncNow(), { status: 'applied', commit: signed, previous: first });
    assert.equal(recorded.roleOfOrders(), 'shop_reader');
  });

  it('does not start on an unsigned commit', { timeout: 10_000 }, async () => {
    const repo = new PolicyRepo();
    repos.push(repo);
    const release = repo.sshKey('release');
    repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_writer') });
    const options = { url: repo.url, ref: 'main', path: 'policy', intervalMs: 0, timeoutMs: 5_000, workDir: repo.workDir, trustedKeys: [release.publicKey] };
    await assert.rejects(startGitPolicySync(options, recordingApply().apply, captureLog().log), (error: unknown) => {
      assert.ok(isMeshgateError(error) && error.code === 'MG_POLICY_INVALID', String(error));
      assert.match(error.message, /not signed/);
      return true;
    });
  });

  it('reads a trusted-keys file: one key a line, comments allowed, anything else named by line', () => {
    const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJMtD361fgH1gsP1ymwMVb9vQLBJuBggX2UYRS3nEFSg release@example.com';
    assert.deepEqual(parseTrustedKeysText(`# release keys\n\n${key}\n`, 'keys.pub'), [key]);
    assert.throws(() => parseTrustedKeysText(`${key}\nnot a key\n`, 'keys.pub'), /keys\.pub line 2 is not an SSH public key/);
    assert.throws(() => parseTrustedKeysText('# nothing\n', 'keys.pub'), /holds no SSH public key/);
  });
});
