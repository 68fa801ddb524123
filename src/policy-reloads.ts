/**
 * How a running meshgate reloads its policy: from a directory on change (policy.watch),
 * SIGHUP and the admin API; from git, each commit the sync fetches, and SIGHUP and the
 * admin API fetch at once. Every reload goes through one PolicyReloader (checks, swap, open
 * sessions, audit), one at a time.
 */
import { resolve } from 'node:path';
import type { AuditRecorder } from './audit/index.ts';
import type { MeshgateConfig } from './config/schema.ts';
import type { RunningMysql } from './engines/index.ts';
import { mgError } from './errors/index.ts';
import { parseDuration } from './identity/index.ts';
import type { Logger } from './log.ts';
import type { GitPolicySync } from './policy-git/index.ts';
import { PolicyReloader, watchPolicyDirectory, type ReloadRequest, type ReloadResult } from './policy-reload/index.ts';
import type { StartedPolicy } from './policy-start.ts';
import { loadPolicyDir, PolicyParseCache, type CompiledPolicy, type SwappablePolicy } from './policy/index.ts';
import type { Throttling } from './throttle/index.ts';

/** File edits come in bursts (an editor's save, a ConfigMap's files): one reload after 300 ms of quiet. */
const POLICY_WATCH_DEBOUNCE_MS = 300;

interface ReloaderDeps {
  readonly policy: SwappablePolicy;
  readonly started: StartedPolicy;
  readonly throttling: Throttling;
  readonly audit: AuditRecorder;
  readonly log: Logger;
  readonly mysql: RunningMysql | null;
}

/** Every way a reload is asked for (SIGHUP, the admin API) reaches this. */
export interface PolicyReloads {
  reload(request: ReloadRequest): Promise<ReloadResult>;
  close(): Promise<void>;
}

/**
 * Reloads of the policy: from a directory on change (policy.watch), SIGHUP and the admin API;
 * from git, each new commit the sync fetches, and SIGHUP and the admin API fetch at once.
 */
export function policyReloader(config: MeshgateConfig, deps: ReloaderDeps): PolicyReloads {
  const { dir, openSessions, watch, pollInterval } = config.policy;
  const mysql = deps.mysql;
  const git = deps.started.git;
  // A reload parses only the files that changed since the last one.
  const cache = new PolicyParseCache();
  const reloader = new PolicyReloader({
    policy: deps.policy,
    // From git, what a reload names is always a commit (below); the default re-reads the one in force.
    candidate: dir !== undefined ? { source: dir, load: () => loadPolicyDir(dir, { cache }) } : { source: deps.started.source, load: async () => deps.policy.current() },
    check: (next) => deps.throttling.checkPolicyClasses(next.serviceClasses),
    ...(openSessions === 'reevaluate' && mysql !== null ? { reevaluate: (next: CompiledPolicy) => mysql.listener.redecide(next) } : {}),
    audit: deps.audit,
    log: deps.log,
  });
  const watcher =
    !watch || dir === undefined
      ? null
      : watchPolicyDirectory({
          dir: resolve(dir),
          debounceMs: POLICY_WATCH_DEBOUNCE_MS,
          pollMs: parseDuration(pollInterval, 'policy.pollInterval') * 1000,
          onChange: () => void reloader.reload({ trigger: 'watch' }),
          onError: (error) => deps.log.warn('cannot watch the policy directory; SIGHUP and the admin API still reload it', { dir, error: error.message }),
        });
  const close = async () => {
    watcher?.close();
    // No commit reaches the reloader once it is closing (stop is idempotent: policyStart.close again later).
    await git?.stop();
    await reloader.settled();
  };
  if (git === null) return { reload: (request) => reloader.reload(request), close };
  const gitReloads = gitReloadsFor(git, deps.started, reloader, deps.policy, deps.log);
  return { reload: gitReloads, close };
}

/**
 * Commits from the git sync go through the reloader (checks, swap, open sessions, audit), one
 * at a time with every other reload; a refusal there refuses the commit. SIGHUP and the admin
 * API fetch at once and answer with what became of the commit at the ref.
 */
function gitReloadsFor(git: GitPolicySync, started: StartedPolicy, reloader: PolicyReloader, policy: SwappablePolicy, log: Logger): (request: ReloadRequest) => Promise<ReloadResult> {
  let last: { readonly commit: string; readonly result: ReloadResult } | null = null;
  started.onCommit(async (revision) => {
    const candidate = { source: `${started.source}@${revision.commit}`, load: () => loadPolicyDir(revision.dir, { version: revision.commit }) };
    const result = await reloader.reload({ trigger: 'git', candidate });
    last = { commit: revision.commit, result };
    if (result.outcome !== 'refused') return;
    // Unexpected failures are retried at the next interval; anything else the commit itself decides.
    if (result.error.code === 'MG_INTERNAL' || result.error.code === 'MG_POLICY_INVALID') throw result.error;
    throw mgError('MG_POLICY_INVALID', result.error.message, result.error);
  });
  return async (request) => {
    log.info('policy fetch from git asked', { trigger: request.trigger, ...(request.identity == null ? {} : { by: request.identity.spiffeId }) });
    const outcome = await git.syncNow();
    const current = policy.current();
    const applied = last;
    if (outcome.status === 'applied' && applied?.commit === outcome.commit) return applied.result;
    if (outcome.status === 'refused') return { outcome: 'refused', version: current.version, error: mgError('MG_POLICY_INVALID', outcome.reason) };
    if (outcome.status === 'failed') return { outcome: 'refused', version: current.version, error: mgError('MG_POLICY_GIT_UNAVAILABLE', outcome.reason) };
    return { outcome: 'unchanged', version: current.version, rules: current.ruleCount };
  };
}

