/**
 * Validated documents → an evaluator: the enforced rules and the dry runs (`action: AUDIT`)
 * each in an index of their own (rule-index.ts), so thousands of rules cost a caller only
 * the few that could match it.
 */
import { firestoreRequestProblem } from './firestore-request.ts';
import { compileRule, type CompiledRule } from './match.ts';
import { defaultDenyReason, explainDecision, malformedReason } from './explain.ts';
import { indexRules } from './rule-index.ts';
import type { ParsedDocument } from './parse.ts';
import { DEFAULT_SERVICE_CLASS, type Decision, type Explanation, type LoadedPolicy, type PolicyFileSummary, type PolicyRequest, type Subject } from './types.ts';

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
