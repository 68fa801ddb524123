/**
 * The policy meshgate starts with, from a directory (`policy.dir`) or from git (`policy.git`,
 * src/policy-git). From git, each later commit the sync fetches goes through the reloader
 * (server.ts), like any other reload: a commit that does not load is refused and the policy
 * in force kept.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MeshgateConfig } from './config/schema.ts';
import type { Logger } from './log.ts';
import { displayUrl, gitPolicyOptions, normalizePath, startGitPolicySync, type ApplyRevision, type GitPolicySync, type GitPolicySyncOptions, type PolicyRevision } from './policy-git/index.ts';
import { loadPolicyDir, type LoadedPolicy } from './policy/index.ts';

export interface StartedPolicy {
  /** The policy in force at start. */
  readonly initial: LoadedPolicy;
  /** Where the policy comes from, as logs and audit events name it: the directory, or url#ref:path. */
  readonly source: string;
  /** The git sync (syncNow for SIGHUP and the admin API); null with policy.dir. */
  readonly git: GitPolicySync | null;
  /**
   * Where each later commit goes once meshgate can reload (the reloader); a commit fetched
   * before that is retried at the next interval.
   */
  onCommit(apply: ApplyRevision): void;
  close(): Promise<void>;
}

export async function startPolicy(config: MeshgateConfig, log: Logger, env: NodeJS.ProcessEnv): Promise<StartedPolicy> {
  const { dir, git } = config.policy;
  if (git === undefined) {
    if (dir === undefined) throw new TypeError('the config schema requires policy.dir or policy.git');
    const initial = await loadPolicyDir(dir);
    return { initial, source: dir, git: null, onCommit: () => {}, close: async () => {} };
  }
  return startGitPolicy(gitPolicyOptions(git, env), log);
}

async function startGitPolicy(options: GitPolicySyncOptions, log: Logger): Promise<StartedPolicy> {
  let initial: LoadedPolicy | null = null;
  let later: ApplyRevision | null = null;
  const apply = async (revision: PolicyRevision) => {
    if (initial === null) {
      initial = await loadPolicyDir(revision.dir, { version: revision.commit });
      return;
    }
    if (later === null) throw new Error('meshgate is still starting; the commit is taken at the next interval');
    await later(revision);
  };
  const sync = await startGitPolicySync(options, apply, log);
  const first = initial as LoadedPolicy | null;
  if (first === null) throw new TypeError('startGitPolicySync resolved without applying a commit');
  const source = `${displayUrl(options.url)}#${options.ref}:${normalizePath(options.path) || '.'}`;
  return {
    initial: first,
    source,
    git: sync,
    onCommit: (next) => {
      later = next;
    },
    close: () => sync.stop(),
  };
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
