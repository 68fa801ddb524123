/**
 * Validated documents → an evaluator. Rules are split by action and indexed by exact
 * principal, so a caller named in a few rules among thousands is checked against those
 * few plus the rules that cannot be keyed (globs, namespaces, no `from`).
 */
import { firestoreRequestProblem } from './firestore-request.ts';
import { isExactOnly } from './glob.ts';
import { compileRule, ruleDecision, type CompiledRule } from './match.ts';
import { defaultDenyReason, explainDecision, malformedReason, subtreeDenyReason } from './explain.ts';
import type { ParsedDocument } from './parse.ts';
import { DEFAULT_SERVICE_CLASS, type Decision, type Explanation, type LoadedPolicy, type PolicyFileSummary, type PolicyRequest, type Subject } from './types.ts';

interface Bucket {
  /** Positions in the deny or allow array, ascending (file order). */
  readonly deny: number[];
  readonly allow: number[];
}

const EMPTY: readonly number[] = Object.freeze([]);

/**
 * The exact principals a rule can only ever match, or null when it cannot be keyed. Other
 * conditions on the same source (namespaces, authMethods, claims) only narrow the match,
 * so keying stays sound: the index picks candidates and ruleDecision checks every condition.
 */
function exactPrincipals(rule: CompiledRule): Set<string> | null {
  if (rule.sources === null) return null;
  const keys = new Set<string>();
  for (const source of rule.sources) {
    if (source.principals === null || !isExactOnly(source.principals)) return null;
    for (const principal of source.principals.exact) keys.add(principal);
  }
  return keys;
}

function buildIndex(rules: readonly CompiledRule[], general: number[], byPrincipal: Map<string, Bucket>, key: 'deny' | 'allow'): void {
  rules.forEach((rule, position) => {
    const keys = exactPrincipals(rule);
    if (keys === null) {
      general.push(position);
      return;
    }
    for (const principal of keys) {
      let bucket = byPrincipal.get(principal);
      if (bucket === undefined) {
        bucket = { deny: [], allow: [] };
        byPrincipal.set(principal, bucket);
      }
      bucket[key].push(position);
    }
  });
}

// Both position lists ascend in file order; walking them as one merged list keeps the
// first matching rule in file order, whichever list holds it.
function firstMatch(
  rules: readonly CompiledRule[],
  a: readonly number[],
  b: readonly number[],
  subject: Subject,
  request: PolicyRequest,
): Decision | null {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const position = j >= b.length || (i < a.length && a[i]! < b[j]!) ? a[i++]! : b[j++]!;
    const decision = ruleDecision(rules[position]!, subject, request);
    if (decision !== null) return decision;
  }
  return null;
}

/** First matching DENY, else first matching ALLOW, over one set of rules (enforced or dry run). */
interface RuleIndex {
  first(subject: Subject, request: PolicyRequest): Decision | null;
  readonly size: number;
}

function indexRules(rules: readonly CompiledRule[]): RuleIndex {
  const denies = rules.filter((r) => r.action === 'DENY');
  const allows = rules.filter((r) => r.action === 'ALLOW');
  const generalDeny: number[] = [];
  const generalAllow: number[] = [];
  const byPrincipal = new Map<string, Bucket>();
  buildIndex(denies, generalDeny, byPrincipal, 'deny');
  buildIndex(allows, generalAllow, byPrincipal, 'allow');
  return {
    size: rules.length,
    first(subject, request) {
      const keyed = byPrincipal.get(subject.principal);
      const denied = firstMatch(denies, generalDeny, keyed?.deny ?? EMPTY, subject, request);
      if (denied !== null) {
        // The rule may name one document deep inside; the caller needs to know why all is refused.
        if (request.engine === 'firestore' && request.pathKind === 'subtree') return { ...denied, reason: subtreeDenyReason(denied.reason, request.path) };
        return denied;
      }
      return firstMatch(allows, generalAllow, keyed?.allow ?? EMPTY, subject, request);
    },
  };
}

function denial(reason: string, policyVersion: string): Decision {
  return { allow: false, ruleId: null, reason, role: null, allowLocalInfile: false, auditParameters: 'none', googleServiceAccount: null, traceQueryText: null, serviceClass: DEFAULT_SERVICE_CLASS, policyVersion };
}

/** `version`: a digest of the texts compiled (the loader's) or a commit id; every decision carries it. */
export function compilePolicy(documents: readonly ParsedDocument[], files: readonly PolicyFileSummary[], version = 'unversioned'): LoadedPolicy {
  const all: CompiledRule[] = [];
  for (const { doc } of documents) {
    doc.spec.rules.forEach((spec, index) => all.push(compileRule(doc.metadata.name, doc.spec.action, spec, index, version)));
  }
  const enforced = indexRules(all.filter((rule) => !rule.dryRun));
  const dryRuns = indexRules(all.filter((rule) => rule.dryRun));

  // A path no rule could be meant for (empty segments, wrong parity, ...) is refused before
  // any rule sees it: a `**` would otherwise match it.
  const malformed = (request: PolicyRequest): string | null => (request.engine === 'firestore' ? firestoreRequestProblem(request) : null);

  const evaluate = (subject: Subject, request: PolicyRequest): Decision => {
    const problem = malformed(request);
    if (problem !== null) return denial(malformedReason(problem), version);
    return enforced.first(subject, request) ?? denial(defaultDenyReason(subject, request), version);
  };

  const dryRun = (subject: Subject, request: PolicyRequest): Decision | null => {
    if (dryRuns.size === 0 || malformed(request) !== null) return null;
    return dryRuns.first(subject, request);
  };

  const explain = (subject: Subject, request: PolicyRequest): Explanation => {
    return explainDecision(all, subject, request, evaluate(subject, request), dryRun(subject, request), malformed(request));
  };

  return Object.freeze({
    evaluate,
    dryRun,
    explain,
    hasDryRuns: dryRuns.size > 0,
    ruleCount: all.length,
    serviceClasses: Object.freeze([...new Set(all.filter((rule) => rule.action === 'ALLOW' && !rule.dryRun).map((rule) => rule.decisions[0]![0]!.serviceClass))].sort()),
    sources: Object.freeze(files.map((f) => f.name)),
    files: Object.freeze(files.map((f) => Object.freeze({ ...f }))),
    rules: Object.freeze(all),
    documents: Object.freeze(documents.map((d) => d.doc)),
    version,
  });
}
