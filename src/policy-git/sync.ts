/**
 * GitOps for policy: fetch a ref on a timer (and on demand), and hand each new commit — its
 * policy directory checked out whole into a fresh directory — to the reload path. A commit
 * that is refused (unsigned, missing path, invalid policy) is logged once and skipped until
 * the ref moves on; a remote that cannot be read is retried at the next interval. The policy
 * in force changes only when `apply` accepts a commit.
 */
import { isMeshgateError, mgError } from '../errors/index.ts';
import type { Logger } from '../log.ts';
import { gitEnvironment } from './git.ts';
import { CommitRefused, openRepository } from './repository.ts';
import { GIT_REF, GIT_URL, GIT_URL_TEXT, SSH_PUBLIC_KEY, SSH_PUBLIC_KEY_TEXT } from '../config/policy-schema.ts';

export interface GitPolicySyncOptions {
  /** file://, ssh:// or scp-like user@host:path (https only for repositories readable without credentials). */
  readonly url: string;
  /** Branch, tag or full ref name on the remote. */
  readonly ref: string;
  /** The policy directory inside the repository; '.' for its root. */
  readonly path: string;
  /** Between fetches; 0: only on syncNow(). */
  readonly intervalMs: number;
  /** The longest one git command may run (a fetch over a slow link included). */
  readonly timeoutMs: number;
  /** meshgate's own directory for the repository and checkouts. */
  readonly workDir: string;
  /** SSH public keys; present: only commits signed by one of them are applied. */
  readonly trustedKeys?: readonly string[];
  /** The environment git runs with (ssh agent, GIT_SSH_COMMAND); default: the process's. */
  readonly env?: NodeJS.ProcessEnv;
}

export interface PolicyRevision {
  readonly commit: string;
  /** Absolute path of the policy directory at that commit; kept until another commit is applied. */
  readonly dir: string;
}

export type SyncOutcome =
  | { readonly status: 'applied'; readonly commit: string; readonly previous: string | null }
  | { readonly status: 'unchanged'; readonly commit: string }
  | { readonly status: 'refused'; readonly commit: string; readonly reason: string }
  | { readonly status: 'failed'; readonly reason: string };

export interface GitPolicySync {
  /** Fetches now (SIGHUP, admin API); a call during a sync waits for one more that starts after it. */
  syncNow(): Promise<SyncOutcome>;
  /** Stops the timer, ends a running git command and waits for the sync to finish. */
  stop(): Promise<void>;
  /** The commit whose policy is in force. */
  readonly lastCommit: string | null;
}

export type ApplyRevision = (revision: PolicyRevision) => Promise<void>;

/** Refused commits remembered so each is logged once; a long-lived process forgets the oldest. */
const MAX_REMEMBERED_REFUSALS = 256;

/**
 * Starts the sync; resolves once a first commit is applied (startup needs a policy). With
 * the remote unreachable or its commit refused, the commit this work directory last applied
 * is used instead, if there is one; otherwise the start fails.
 */
export async function startGitPolicySync(options: GitPolicySyncOptions, apply: ApplyRevision, log: Logger): Promise<GitPolicySync> {
  const path = checkOptions(options);
  const abort = new AbortController();
  const url = displayUrl(options.url);
  const repo = await openRepository({
    workDir: options.workDir,
    url: options.url,
    ref: options.ref,
    path,
    timeoutMs: options.timeoutMs,
    env: gitEnvironment(options.env),
    signal: abort.signal,
    ...(options.trustedKeys === undefined ? {} : { trustedKeys: options.trustedKeys }),
  });
  const fields = { url, ref: options.ref, path: options.path };
  const refused = new Map<string, string>();
  let lastCommit: string | null = null;
  let lastFailure: string | null = null;
  let stopped = false;

  /** Hides what git said about the URL's userinfo, should an https URL carry a token. */
  const scrub = (text: string) => text.split(options.url).join(url);

  const refuse = (commit: string, reason: string): SyncOutcome => {
    if (!refused.has(commit)) {
      refused.set(commit, reason);
      if (refused.size > MAX_REMEMBERED_REFUSALS) refused.delete(refused.keys().next().value as string);
      log.error('policy commit refused; the policy in force is kept', { ...fields, commit, inForce: lastCommit, reason });
    }
    return { status: 'refused', commit, reason };
  };

  /** Verify, check out, apply: the same path for the fetched commit and the startup fallback. */
  const take = async (commit: string): Promise<SyncOutcome> => {
    const known = refused.get(commit);
    if (known !== undefined) return { status: 'refused', commit, reason: known };
    let dir: string | null = null;
    try {
      await repo.verify(commit);
      dir = await repo.checkout(commit);
      const movement = lastCommit === null ? null : await repo.movement(lastCommit, commit);
      await apply({ commit, dir });
      const previous = lastCommit;
      lastCommit = commit;
      await repo.markApplied(commit);
      await repo.prune(commit);
      if (movement === 'forward' || movement === null) log.info('policy commit applied', { ...fields, commit, previous });
      else log.warn(`policy commit applied; the ref moved ${movement === 'backward' ? 'back to an older commit' : 'to a commit that does not descend from the one in force (history rewritten)'}`, { ...fields, commit, previous });
      return { status: 'applied', commit, previous };
    } catch (error) {
      if (dir !== null && lastCommit !== commit) await repo.prune(lastCommit).catch(() => undefined);
      if (error instanceof CommitRefused) return refuse(commit, error.reason);
      if (isMeshgateError(error) && error.code === 'MG_POLICY_INVALID') return refuse(commit, error.message);
      throw error;
    }
  };

  const failed = (error: unknown): SyncOutcome => {
    const reason = scrub(error instanceof Error ? error.message : String(error));
    // Said when it starts and when it changes, not at every interval while the remote stays down.
    if (!stopped && reason !== lastFailure) log.error('policy git sync failed; retried at the next interval, the policy in force is kept', { ...fields, inForce: lastCommit, reason });
    lastFailure = reason;
    return { status: 'failed', reason };
  };

  const cycle = async (): Promise<SyncOutcome> => {
    try {
      const commit = await repo.fetch();
      if (lastFailure !== null) log.info('policy git sync works again', { ...fields, commit });
      lastFailure = null;
      if (commit === lastCommit) return { status: 'unchanged', commit };
      return await take(commit);
    } catch (error) {
      return failed(error);
    }
  };

  let running: Promise<SyncOutcome> | null = null;
  let queued: Promise<SyncOutcome> | null = null;
  const syncNow = (): Promise<SyncOutcome> => {
    if (stopped) return Promise.resolve({ status: 'failed', reason: 'the policy git sync is stopped' });
    if (running === null) {
      running = cycle().finally(() => {
        running = null;
      });
      return running;
    }
    // One follow-up, shared by every caller meanwhile: it fetches after the running one, so it sees their push.
    queued ??= running.then(() => {
      queued = null;
      return syncNow();
    });
    return queued;
  };

  const first = await syncNow();
  if (first.status !== 'applied') await startFromApplied(first);
  const timer = options.intervalMs > 0 ? setInterval(() => void (running === null ? syncNow() : undefined), options.intervalMs) : null;
  timer?.unref();

  async function startFromApplied(first: SyncOutcome): Promise<void> {
    const why = first.status === 'failed' || first.status === 'refused' ? first.reason : first.status;
    const previous = await repo.applied().catch(() => null);
    if (previous !== null && previous !== (first.status === 'refused' ? first.commit : null)) {
      const outcome = await take(previous).catch(failed);
      if (outcome.status === 'applied') {
        log.warn('policy starts from the commit applied before this restart: the ref could not be used', { ...fields, commit: previous, reason: why });
        return;
      }
    }
    abort.abort();
    const code = first.status === 'refused' ? 'MG_POLICY_INVALID' : 'MG_POLICY_GIT_UNAVAILABLE';
    throw mgError(code, `policy from git (${url} ${options.ref}): ${why}`);
  }

  return {
    syncNow,
    get lastCommit() {
      return lastCommit;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (timer !== null) clearInterval(timer);
      abort.abort();
      await Promise.allSettled([running, queued]);
    },
  };
}

/** Caller mistakes (the config schema checks the same for operators); returns the normalized path. */
function checkOptions(options: GitPolicySyncOptions): string {
  if (!GIT_URL.test(options.url)) throw new TypeError(`policy git url must be ${GIT_URL_TEXT}, got ${displayUrl(options.url)}`);
  if (!GIT_REF.test(options.ref)) throw new TypeError(`not a usable git ref name: ${options.ref}`);
  for (const key of options.trustedKeys ?? []) if (!SSH_PUBLIC_KEY.test(key)) throw new TypeError(`trusted key is not ${SSH_PUBLIC_KEY_TEXT}`);
  if (options.trustedKeys !== undefined && options.trustedKeys.length === 0) throw new TypeError('trustedKeys, when given, needs at least one key');
  return normalizePath(options.path);
}

/** '.', './policy/', 'policy' → '' or 'policy'; nothing that climbs out of the repository. */
export function normalizePath(path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..') || path.startsWith('/')) throw new TypeError(`policy git path must be relative inside the repository, got ${path}`);
  return parts.join('/');
}

/** The URL as logs show it: an https URL's userinfo (a token, perhaps) hidden. */
export function displayUrl(url: string): string {
  return url.replace(/^(https:\/\/)[^@/]*@/, '$1***@');
}

