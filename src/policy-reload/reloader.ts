/**
 * Putting a new policy version in force while meshgate runs. Every trigger — a file change,
 * SIGHUP, the admin API, a git commit — goes through `reload`, one at a time: the new version
 * is loaded, compiled and checked whole before it is swapped in, so a decision never sees
 * half a policy and a broken version never replaces a good one. Each outcome is an audit
 * event (and so a metric) and a log line; open sessions then keep their decision or are judged
 * again, as `policy.openSessions` says.
 */
import type { PolicyChangeFacts } from '../audit/index.ts';
import type { Identity } from '../identity/index.ts';
import { asMeshgateError, type MeshgateError } from '../errors/index.ts';
import type { Logger } from '../log.ts';
import type { CompiledPolicy, LoadedPolicy, SwappablePolicy } from '../policy/index.ts';

/** What asked for a reload; recorded with it. */
export type ReloadTrigger = 'watch' | 'signal' | 'admin' | 'git';

/** Where the outcome goes: the audit recorder (one `policy` event each). */
export interface PolicyChangeRecorder {
  policyChange(facts: PolicyChangeFacts): void;
}

/** A version to put in force, and where it came from (a directory, a repository at a commit). */
export interface PolicyCandidate {
  load(): Promise<LoadedPolicy>;
  readonly source: string;
}

export interface PolicyReloaderOptions {
  readonly policy: SwappablePolicy;
  /** Where the policy comes from unless a reload names another (the git sync does). */
  readonly candidate: PolicyCandidate;
  /** Checks beyond compiling (the throttle's classes): throws to refuse the version. */
  readonly check?: (next: LoadedPolicy) => void;
  /**
   * After the swap, with `policy.openSessions: reevaluate`: judge every open session again and
   * end those the new version no longer allows; returns how many ended. Absent: sessions keep
   * the decision they were opened with.
   */
  readonly reevaluate?: (next: CompiledPolicy) => number;
  readonly audit: PolicyChangeRecorder;
  readonly log: Logger;
}

export type ReloadResult =
  | { readonly outcome: 'completed'; readonly version: string; readonly previousVersion: string; readonly rules: number; readonly sessionsEnded: number }
  | { readonly outcome: 'unchanged'; readonly version: string; readonly rules: number }
  | { readonly outcome: 'refused'; readonly version: string; readonly error: MeshgateError };

export interface ReloadRequest {
  readonly trigger: ReloadTrigger;
  /** The admin who asked (admin API). */
  readonly identity?: Identity | null;
  /** Another source than the configured one (a git commit). */
  readonly candidate?: PolicyCandidate;
}

export class PolicyReloader {
  #queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: PolicyReloaderOptions) {}

  /** One reload after whatever reload is running; never rejects. */
  reload(request: ReloadRequest): Promise<ReloadResult> {
    const next = this.#queue.then(() => this.#reloadNow(request));
    this.#queue = next;
    return next;
  }

  async #reloadNow(request: ReloadRequest): Promise<ReloadResult> {
    const { policy, audit, log } = this.options;
    const candidate = request.candidate ?? this.options.candidate;
    const current = policy.current();
    let next: LoadedPolicy;
    try {
      next = await candidate.load();
      if (next.version === current.version) {
        log.info('policy unchanged', { trigger: request.trigger, version: current.version, source: candidate.source });
        return { outcome: 'unchanged', version: current.version, rules: current.ruleCount };
      }
      this.options.check?.(next);
    } catch (thrown) {
      const error = asMeshgateError(thrown);
      log.error('policy reload refused: the version in force stays', { trigger: request.trigger, version: current.version, source: candidate.source, code: error.code, error: error.message });
      audit.policyChange({ action: 'reload', trigger: request.trigger, identity: request.identity ?? null, policyVersion: null, previousVersion: current.version, rules: null, source: candidate.source, error });
      return { outcome: 'refused', version: current.version, error };
    }
    policy.swap(next);
    // Sessions are judged after the swap, so a session opened meanwhile was judged by `next` already.
    const sessionsEnded = this.options.reevaluate?.(next) ?? 0;
    log.info('policy reloaded', { trigger: request.trigger, version: next.version, previousVersion: current.version, rules: next.ruleCount, source: candidate.source, sessionsEnded });
    audit.policyChange({ action: 'reload', trigger: request.trigger, identity: request.identity ?? null, policyVersion: next.version, previousVersion: current.version, rules: next.ruleCount, source: candidate.source, sessionsEnded, error: null });
    return { outcome: 'completed', version: next.version, previousVersion: current.version, rules: next.ruleCount, sessionsEnded };
  }

  /** Resolves once the reloads asked for so far are done (shutdown). */
  async settled(): Promise<void> {
    await this.#queue;
  }
}
