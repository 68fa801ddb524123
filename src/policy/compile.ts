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

function denial(reason: string): Decision {
  return { allow: false, ruleId: null, reason, role: null, allowLocalInfile: false, auditParameters: 'none', googleServiceAccount: null, traceQueryText: null, serviceClass: DEFAULT_SERVICE_CLASS };
}

/** `version`: a digest of the texts compiled (the loader's), for metrics and logs. */
export function compilePolicy(documents: readonly ParsedDocument[], files: readonly PolicyFileSummary[], version = 'unversioned'): LoadedPolicy {
  const all: CompiledRule[] = [];
  for (const { doc } of documents) {
    doc.spec.rules.forEach((spec, index) => all.push(compileRule(doc.metadata.name, doc.spec.action, spec, index)));
  }
  const denies = all.filter((r) => r.action === 'DENY');
  const allows = all.filter((r) => r.action === 'ALLOW');
  const generalDeny: number[] = [];
  const generalAllow: number[] = [];
  const byPrincipal = new Map<string, Bucket>();
  buildIndex(denies, generalDeny, byPrincipal, 'deny');
  buildIndex(allows, generalAllow, byPrincipal, 'allow');

  const evaluate = (subject: Subject, request: PolicyRequest): Decision => {
    // A path no rule could be meant for (empty segments, wrong parity, ...) is refused
    // before any rule sees it: a `**` would otherwise match it.
    const problem = request.engine === 'firestore' ? firestoreRequestProblem(request) : null;
    if (problem !== null) return denial(malformedReason(problem));
    const keyed = byPrincipal.get(subject.principal);
    const denied = firstMatch(denies, generalDeny, keyed?.deny ?? EMPTY, subject, request);
    if (denied !== null) {
      // The rule may name one document deep inside; the caller needs to know why all is refused.
      if (request.engine === 'firestore' && request.pathKind === 'subtree') return { ...denied, reason: subtreeDenyReason(denied.reason, request.path) };
      return denied;
    }
    return firstMatch(allows, generalAllow, keyed?.allow ?? EMPTY, subject, request) ?? denial(defaultDenyReason(subject, request));
  };

  const explain = (subject: Subject, request: PolicyRequest): Explanation => {
    const problem = request.engine === 'firestore' ? firestoreRequestProblem(request) : null;
    return explainDecision(all, subject, request, evaluate(subject, request), problem);
  };

  return Object.freeze({
    evaluate,
    explain,
    ruleCount: all.length,
    serviceClasses: Object.freeze([...new Set(all.filter((rule) => rule.action === 'ALLOW').map((rule) => rule.decisions[0]![0]!.serviceClass))].sort()),
    sources: Object.freeze(files.map((f) => f.name)),
    files: Object.freeze(files.map((f) => Object.freeze({ ...f }))),
    rules: Object.freeze(all),
    version,
  });
}
