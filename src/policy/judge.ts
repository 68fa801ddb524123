/**
 * The enforced decision and the dry run beside it, the way every engine asks: audit events
 * record both (what decided, by which version, and what a rule under `action: AUDIT` would
 * have done), and only the first is enforced.
 */
import type { CompiledPolicy, Decision, PolicyRequest, Subject } from './types.ts';

/** What an event keeps of a judgement beyond allow/deny and the rule (audit's PolicyFacts). */
export interface JudgementMarks {
  readonly policyVersion: string;
  readonly dryRun: { readonly rule: string | null; readonly decision: 'allow' | 'deny'; readonly reason: string } | null;
}

export interface Judgement {
  readonly decision: Decision;
  readonly marks: JudgementMarks;
}

export function judge(policy: CompiledPolicy, subject: Subject, request: PolicyRequest): Judgement {
  const decision = policy.evaluate(subject, request);
  // Dry runs cost nothing until a policy has one.
  const dry = policy.hasDryRuns ? policy.dryRun(subject, request) : null;
  return { decision, marks: marksOf(decision, dry) };
}

export function marksOf(decision: Decision, dry: Decision | null): JudgementMarks {
  return {
    policyVersion: decision.policyVersion,
    dryRun: dry === null ? null : { rule: dry.ruleId, decision: dry.allow ? 'allow' : 'deny', reason: dry.reason },
  };
}
