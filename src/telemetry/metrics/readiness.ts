/**
 * /readyz: whether this replica should get traffic. Ready when the policy is loaded, the
 * upstreams were reached lately and the audit records. "Lately" is a login that went through
 * (told by the metrics' event counters) or meshgate's own check of each upstream (the start
 * check again: a login of each account), run at most once per interval and only when a probe
 * asks after the last success has aged: a probe never opens a connection of its own each time.
 * While a check runs, a probe answers from the last result. Not ready either before every
 * listener is open (a start waiting for its upstreams) or once shutdown has begun (SIGTERM):
 * a Service then sends new connections to the other replicas.
 */
import type { UpstreamCheck, UpstreamProblem } from '../../upstream-checks.ts';

export interface ReadinessSources {
  /** True once a policy is loaded (a source that throws counts as not loaded). */
  readonly policyLoaded: () => boolean;
  /** What is wrong with meshgate's certificate or trust bundles (expired, no root), else null. */
  readonly trustProblem?: () => string | null;
  /** The audit's refusal while it cannot record (MG_AUDIT_UNAVAILABLE), else null. */
  readonly auditRefusal: () => { readonly code: string; readonly message: string } | null;
  /** The checks each engine ran against its upstream at start. */
  readonly upstreamChecks: () => readonly UpstreamCheck[];
  /** How long a success counts (metrics.upstreamCheckInterval). */
  readonly upstreamFreshMs: number;
  /** How long a probe waits for a first check before answering without it (default 900 ms: under a kubelet probe's 1 s). */
  readonly firstCheckWaitMs?: number;
  readonly now?: () => number;
}

export interface ReadinessReport {
  readonly ready: boolean;
  /** What is not ready, by check: lifecycle, policy, trust, upstream, audit; with what is wrong. */
  readonly notReady: Readonly<Record<string, string>>;
}

/** starting: listeners not open yet; serving; draining: SIGTERM came, no new work is taken. */
export type Lifecycle = 'starting' | 'serving' | 'draining';

const LIFECYCLE_PROBLEM: Readonly<Record<Lifecycle, string | null>> = {
  starting: 'meshgate is starting: its listeners open once every upstream has answered (see --wait-for-upstream)',
  serving: null,
  draining: 'meshgate is shutting down (SIGTERM): it takes no new connection; open sessions finish within shutdown.gracePeriod',
};

export class Readiness {
  private lifecycle: Lifecycle = 'starting';
  private lastReached = -Infinity;
  /** When the last check began: a failing upstream is checked once per interval too. */
  private lastAttempt = -Infinity;
  private lastProblems: readonly UpstreamProblem[] | null = null;
  private checking: Promise<void> | null = null;
  private readonly now: () => number;

  constructor(private readonly sources: ReadinessSources) {
    this.now = sources.now ?? (() => performance.now());
  }

  /** Every listener is open. */
  serving(): void {
    if (this.lifecycle === 'starting') this.lifecycle = 'serving';
  }

  /** Shutdown began: not ready from now on, whatever else holds. */
  draining(): void {
    this.lifecycle = 'draining';
  }

  /** An upstream answered (a login through it went through). */
  upstreamReached(): void {
    this.lastReached = this.now();
    this.lastProblems = [];
  }

  async report(): Promise<ReadinessReport> {
    const notReady: Record<string, string> = {};
    const lifecycle = LIFECYCLE_PROBLEM[this.lifecycle];
    if (lifecycle !== null) notReady['lifecycle'] = lifecycle;
    let policy = false;
    try {
      policy = this.sources.policyLoaded();
    } catch {
      policy = false;
    }
    if (!policy) notReady['policy'] = 'no policy is loaded';
    const trust = this.sources.trustProblem?.() ?? null;
    if (trust !== null) notReady['trust'] = trust;
    // A replica on its way out opens no upstream connection to answer a probe.
    const upstream = this.lifecycle === 'draining' ? null : await this.upstream();
    if (upstream !== null) notReady['upstream'] = upstream;
    const refusal = this.sources.auditRefusal();
    if (refusal !== null) notReady['audit'] = `${refusal.code}: ${refusal.message}`;
    return { ready: Object.keys(notReady).length === 0, notReady };
  }

  /** null when reached lately; otherwise what is wrong. */
  private async upstream(): Promise<string | null> {
    if (this.sources.upstreamChecks().length === 0) return null;
    const stale = this.now() - Math.max(this.lastReached, this.lastAttempt) > this.sources.upstreamFreshMs;
    if (stale && this.checking === null) {
      this.lastAttempt = this.now();
      this.checking = this.check().finally(() => (this.checking = null));
    }
    // The first probe waits (briefly) for a first result; later ones answer from the last.
    if (this.lastProblems === null && this.checking !== null) {
      const wait = this.sources.firstCheckWaitMs ?? 900;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.checking, new Promise<void>((resolve) => (timer = setTimeout(resolve, wait)))]);
      clearTimeout(timer);
    }
    const problems = this.lastProblems;
    if (problems === null) return 'not checked yet: the first upstream check is still running';
    if (problems.length === 0) return null;
    return problems.map((p) => `[${p.code}] ${p.problem}`).join('; ');
  }

  private async check(): Promise<void> {
    const started = this.now();
    try {
      const problems = (await Promise.all(this.sources.upstreamChecks().map((c) => c.run()))).flat();
      this.lastProblems = problems;
      if (problems.length === 0) this.lastReached = Math.max(this.lastReached, started);
    } catch (error) {
      this.lastProblems = [{ upstream: 'upstream', address: '', account: null, code: 'MG_UPSTREAM_UNAVAILABLE', upstreamError: null, problem: String(error), fix: '', transient: true }];
    }
  }
}
