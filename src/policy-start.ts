/**
 * The policy meshgate starts with, from a directory (`policy.dir`) or from git (`policy.git`,
 * src/policy-git). From git, each commit the sync accepts replaces the policy the engines read
 * next (the PolicySource is a getter); a commit that does not load is refused and the policy
 * in force kept.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MeshgateConfig } from './config/schema.ts';
import type { Logger } from './log.ts';
import { gitPolicyOptions, startGitPolicySync, type GitPolicySync, type GitPolicySyncOptions, type PolicyRevision } from './policy-git/index.ts';
import { fixedPolicy, loadPolicyDir, type LoadedPolicy, type PolicySource } from './policy/index.ts';

export interface StartedPolicy {
  readonly source: PolicySource;
  /** The policy in force at start. */
  readonly initial: LoadedPolicy;
  /** The git sync (syncNow for SIGHUP and the admin API); null with policy.dir. */
  readonly git: GitPolicySync | null;
  close(): Promise<void>;
}

export async function startPolicy(config: MeshgateConfig, log: Logger, env: NodeJS.ProcessEnv): Promise<StartedPolicy> {
  const { dir, git } = config.policy;
  if (git === undefined) {
    if (dir === undefined) throw new TypeError('the config schema requires policy.dir or policy.git');
    const initial = await loadPolicyDir(dir);
    return { source: fixedPolicy(initial), initial, git: null, close: async () => {} };
  }
  return startGitPolicy(gitPolicyOptions(git, env), log);
}

async function startGitPolicy(options: GitPolicySyncOptions, log: Logger): Promise<StartedPolicy> {
  let current: LoadedPolicy | null = null;
  const apply = async (revision: PolicyRevision) => {
    current = await loadPolicyDir(revision.dir, { version: revision.commit });
  };
  const sync = await startGitPolicySync(options, apply, log);
  const initial = current as LoadedPolicy | null;
  if (initial === null) throw new TypeError('startGitPolicySync resolved without applying a commit');
  return { source: { current: () => current ?? initial }, initial, git: sync, close: () => sync.stop() };
}

/**
 * The policy as it is now, for a command that decides once (`creds issue` without a server):
 * from git, a fresh clone in a temporary directory, so a running meshgate's own work
 * directory is never touched.
 */
export async function loadPolicyOnce(config: MeshgateConfig, log: Logger, env: NodeJS.ProcessEnv): Promise<LoadedPolicy> {
  const { git } = config.policy;
  if (git === undefined) return (await startPolicy(config, log, env)).initial;
  const workDir = await mkdtemp(join(tmpdir(), 'meshgate-policy-git-'));
  try {
    const once = await startGitPolicy({ ...gitPolicyOptions(git, env), workDir, intervalMs: 0 }, log);
    await once.close();
    return once.initial;
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
