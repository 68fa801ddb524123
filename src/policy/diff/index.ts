/**
 * `policy diff`: who gains or loses which access between two compiled policies. Pure: the
 * callers and requests come from what the two policies name (identities.ts, requests.ts)
 * and from identities the caller read out of an audit log; each pair is evaluated by both
 * policies and kept when the decisions differ in what they grant.
 */
import type { Decision, LoadedPolicy, Subject } from '../types.ts';
import { diffIdentities, identityKey, type DiffIdentity, type SeenIdentity } from './identities.ts';
import { diffRequests, type DiffRequest } from './requests.ts';

export { MAX_COMBINED, type DiffIdentity, type SeenIdentity } from './identities.ts';
export type { DiffRequest } from './requests.ts';
export { seenIdentityOf } from './seen.ts';

/**
 * gain: denied before, allowed now; lose: the reverse; change: allowed both times, granting
 * differently; dry-run: what a dry-run (`action: AUDIT`) rule would decide differs.
 */
export type DiffKind = 'gain' | 'lose' | 'change' | 'dry-run';

/** What a decision grants, as the diff compares it. */
export interface DecisionSummary {
  readonly allow: boolean;
  /** The deciding rule, or null for the default deny. */
  readonly ruleId: string | null;
  readonly role: string | null;
  readonly googleServiceAccount: string | null;
  readonly serviceClass: string | null;
  readonly allowLocalInfile: boolean;
}

/** The aspects of a grant a `change` line may name. */
export const GRANT_ASPECTS = ['role', 'googleServiceAccount', 'serviceClass', 'allowLocalInfile'] as const;
export type GrantAspect = (typeof GRANT_ASPECTS)[number];

export interface DiffLine {
  readonly kind: DiffKind;
  readonly request: DiffRequest;
  readonly old: DecisionSummary;
  readonly new: DecisionSummary;
  /** For `change`: which aspects of the grant differ. */
  readonly changed: readonly GrantAspect[];
  /**
   * For `dry-run`: what each side's dry-run rules would decide where that differs from what
   * it enforces (null: no dry run, or one that would decide the same). `old` and `new` are
   * then the enforced decisions, for context.
   */
  readonly dryRun?: { readonly old: DecisionSummary | null; readonly new: DecisionSummary | null };
}

export interface IdentityDiff {
  readonly identity: DiffIdentity;
  readonly lines: readonly DiffLine[];
}

export interface PolicyDiff {
  /** Identities with at least one line, in the order diffIdentities gives. */
  readonly identities: readonly IdentityDiff[];
  readonly summary: {
    /** Identities with at least one line of that kind. */
    readonly gain: number;
    readonly lose: number;
    readonly change: number;
    readonly dryRun: number;
    readonly lines: number;
  };
  /** How many callers and requests were tried, so a reader knows the reach of "no difference". */
  readonly considered: {
    readonly identities: number;
    readonly requests: number;
    /** True when named principals were not combined with other sources' claims (too many: MAX_COMBINED). */
    readonly limited: boolean;
  };
}

function summaryOf(decision: Decision): DecisionSummary {
  if (!decision.allow) return { allow: false, ruleId: decision.ruleId, role: null, googleServiceAccount: null, serviceClass: null, allowLocalInfile: false };
  return {
    allow: true,
    ruleId: decision.ruleId,
    role: decision.role,
    googleServiceAccount: decision.googleServiceAccount,
    serviceClass: decision.serviceClass,
    allowLocalInfile: decision.allowLocalInfile,
  };
}

function grantsDiffer(a: DecisionSummary, b: DecisionSummary): GrantAspect[] | null {
  if (a.allow !== b.allow) return null;
  return a.allow ? GRANT_ASPECTS.filter((aspect) => a[aspect] !== b[aspect]) : [];
}

/** The line for one caller and request, or null when both policies grant the same. */
export function compareDecisions(request: DiffRequest, before: Decision, after: Decision): DiffLine | null {
  const old = summaryOf(before);
  const next = summaryOf(after);
  const changed = grantsDiffer(old, next);
  if (changed === null) return { kind: next.allow ? 'gain' : 'lose', request, old, new: next, changed: [] };
  return changed.length === 0 ? null : { kind: 'change', request, old, new: next, changed };
}

/** What a dry run would change about the enforced decision; null when nothing. */
function dryRunEffect(dryRun: Decision | null, enforced: DecisionSummary): DecisionSummary | null {
  if (dryRun === null) return null;
  const would = summaryOf(dryRun);
  return grantsDiffer(would, enforced)?.length === 0 ? null : would;
}

function sameEffect(a: DecisionSummary | null, b: DecisionSummary | null): boolean {
  if (a === null || b === null) return a === b;
  return grantsDiffer(a, b)?.length === 0;
}

/** The dry-run line for one caller and request: a dry run starts, stops or would decide otherwise. */
function compareDryRuns(request: DiffRequest, before: LoadedPolicy, after: LoadedPolicy, subject: Subject): DiffLine | null {
  const old = summaryOf(before.evaluate(subject, request.request));
  const next = summaryOf(after.evaluate(subject, request.request));
  const wouldBefore = before.hasDryRuns ? dryRunEffect(before.dryRun(subject, request.request), old) : null;
  const wouldAfter = after.hasDryRuns ? dryRunEffect(after.dryRun(subject, request.request), next) : null;
  if (sameEffect(wouldBefore, wouldAfter)) return null;
  return { kind: 'dry-run', request, old, new: next, changed: [], dryRun: { old: wouldBefore, new: wouldAfter } };
}

export interface DiffOptions {
  /** Identities read from audit logs (seenIdentityOf), listed by name. */
  readonly seen?: readonly SeenIdentity[];
}

/** What a caller's lines say, whoever the caller is: equal signatures, same news. */
function signature(lines: readonly DiffLine[]): string {
  return JSON.stringify(lines.map((l) => [l.kind, l.request.label, l.old, l.new, l.dryRun ?? null]));
}

/** Every caller × request where `before` and `after` grant differently. */
export function diffPolicies(before: LoadedPolicy, after: LoadedPolicy, options: DiffOptions = {}): PolicyDiff {
  const rules = [...before.rules, ...after.rules];
  const { identities, limited } = diffIdentities(rules, options.seen ?? []);
  const requests = diffRequests(rules);
  const dryRuns = before.hasDryRuns || after.hasDryRuns;
  const all = identities.map((identity): IdentityDiff => {
    const lines: DiffLine[] = [];
    for (const request of requests) {
      const line = compareDecisions(request, before.evaluate(identity.subject, request.request), after.evaluate(identity.subject, request.request));
      if (line !== null) lines.push(line);
      if (!dryRuns) continue;
      const dry = compareDryRuns(request, before, after, identity.subject);
      if (dry !== null) lines.push(dry);
    }
    return { identity, lines };
  });
  const signatures = new Map(all.map(({ identity, lines }) => [identityKey(identity.subject), signature(lines)]));
  const found: IdentityDiff[] = [];
  const counts = { gain: 0, lose: 0, change: 0, dryRun: 0, lines: 0 };
  for (const { identity, lines } of all) {
    if (lines.length === 0) continue;
    if (identity.sameAs?.some((key) => signatures.get(key) === signature(lines)) === true) continue;
    found.push({ identity, lines });
    counts.lines += lines.length;
    for (const kind of ['gain', 'lose', 'change'] as const) if (lines.some((l) => l.kind === kind)) counts[kind] += 1;
    if (lines.some((l) => l.kind === 'dry-run')) counts.dryRun += 1;
  }
  return { identities: found, summary: counts, considered: { identities: identities.length, requests: requests.length, limited } };
}
