/**
 * `meshgate serve` checks every upstream before it accepts a client: one log line per
 * upstream that does not answer or refuses meshgate, naming the account, the address, the
 * upstream's own error and the fix. With a wait (`--wait-for-upstream`), upstreams that do
 * not answer yet are retried with backoff until they do or the time is up: what a container
 * wants when it starts before its database. A refused login stops at once: waiting will
 * not fix a wrong password.
 */
import { mgError, type ErrorCode, type MeshgateError } from './errors/index.ts';
import { formatDuration } from './identity/index.ts';
import type { Logger } from './log.ts';

export interface UpstreamProblem {
  /** `mariadb`, `firestore`. */
  readonly upstream: string;
  /** host:port, or the URL for Google. */
  readonly address: string;
  /** Which of meshgate's accounts failed; null when the upstream itself does not answer. */
  readonly account: string | null;
  readonly code: ErrorCode;
  /** The upstream's error number or the socket error code, for alerts; null when none. */
  readonly upstreamError: number | string | null;
  /** What is wrong, in a sentence that names the account and the address. */
  readonly problem: string;
  /** What to do about it. */
  readonly fix: string;
  /** Waiting may fix it: nothing answers yet, or the server is busy. */
  readonly transient: boolean;
}

export interface UpstreamCheck {
  /** The problems found, none when the upstream answers and takes meshgate's logins. */
  run(): Promise<readonly UpstreamProblem[]>;
}

export interface CheckOptions {
  readonly log: Logger;
  /** How long to wait for upstreams that do not answer yet; 0: fail at the first problem. */
  readonly waitMs: number;
  /** When the wait ends (epoch ms); default `waitMs` from now. */
  readonly deadline?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;

export function describeProblem(p: UpstreamProblem): string {
  return p.fix === '' ? p.problem : `${p.problem}: ${p.fix}`;
}

export async function checkUpstreams(checks: readonly UpstreamCheck[], options: CheckOptions): Promise<void> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const started = now();
  const deadline = options.deadline ?? started + options.waitMs;
  // While waiting, each problem is logged once (again only when it changes).
  const reported = new Set<string>();
  for (let attempt = 1; ; attempt++) {
    const problems = (await Promise.all(checks.map((check) => check.run()))).flat();
    if (problems.length === 0) {
      if (attempt > 1) options.log.info('upstreams answer; starting', { waitedMs: now() - started, attempts: attempt });
      return;
    }
    const waiting = problems.every((p) => p.transient) && now() < deadline;
    for (const p of problems) {
      const fields = { code: p.code, upstream: p.upstream, address: p.address, account: p.account, upstreamError: p.upstreamError };
      if (!waiting) {
        options.log.error(`[${p.code}] ${describeProblem(p)}`, fields);
        continue;
      }
      const key = `${p.upstream} ${p.address} ${p.account} ${p.upstreamError}`;
      if (reported.has(key)) continue;
      reported.add(key);
      const left = Math.max(1, Math.ceil((deadline - now()) / 1000));
      options.log.warn(`[${p.code}] ${describeProblem(p)}; waiting for it (--wait-for-upstream), ${left} s left`, fields);
    }
    if (!waiting) throw failure(problems, options.waitMs);
    await sleep(Math.max(0, Math.min(FIRST_RETRY_MS * 2 ** (attempt - 1), MAX_RETRY_MS, deadline - now())));
  }
}

/** How engines check their upstreams at start (engines/engine.ts EngineDeps.upstreams). */
export interface UpstreamWait {
  /** Resolves once every check passes; rejects with the first problem's code. */
  check(checks: readonly UpstreamCheck[]): Promise<void>;
}

/**
 * One `--wait-for-upstream` budget for the whole start: each engine checks its own upstream
 * when it starts, one after another, and the time a first engine waited is not given again
 * to the next.
 */
export function upstreamWait(options: CheckOptions): UpstreamWait {
  const deadline = (options.now ?? Date.now)() + options.waitMs;
  return { check: (checks) => checkUpstreams(checks, { ...options, deadline }) };
}

function failure(problems: readonly UpstreamProblem[], waitMs: number): MeshgateError {
  const first = problems.find((p) => !p.transient) ?? problems[0]!;
  const lines = problems.map(describeProblem);
  let message = problems.length === 1 ? lines[0]! : `${problems.length} upstream checks failed: ${lines.join('; ')}`;
  if (waitMs > 0 && problems.every((p) => p.transient)) message = `still not answering after --wait-for-upstream ${formatDuration(Math.round(waitMs / 1000))}: ${message}`;
  else if (waitMs === 0 && problems.every((p) => p.transient)) message += ' (if it is still starting, `meshgate serve --wait-for-upstream 60s` waits for it)';
  return mgError(first.code, message);
}
