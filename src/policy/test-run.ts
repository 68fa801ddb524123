/**
 * Running policy test cases: each case's caller and request through evaluate() and dryRun(),
 * the very functions the proxy calls, and their decisions held against what the case
 * expects. Pure: the caller loads the policy and the cases.
 */
import type { PolicyTestCase } from './test-file.ts';
import type { CompiledPolicy, Decision } from './types.ts';

/** One expected field that the decision did not meet. */
export interface PolicyTestMismatch {
  readonly field: 'decision' | 'rule' | 'role' | 'googleServiceAccount' | 'serviceClass' | 'dryRun';
  readonly expected: string | null;
  readonly got: string | null;
}

export interface PolicyTestResult {
  readonly testCase: PolicyTestCase;
  readonly decision: Decision;
  /** What the first matching dry-run (AUDIT) rule would have decided; null when none matches. */
  readonly dryRun: Decision | null;
  readonly passed: boolean;
  /** Empty when the case passed; in the order decision, rule, role, account, class, dry run. */
  readonly mismatches: readonly PolicyTestMismatch[];
}

export function runPolicyTest(policy: CompiledPolicy, testCase: PolicyTestCase): PolicyTestResult {
  const decision = policy.evaluate(testCase.subject, testCase.request);
  const { expect } = testCase;
  const mismatches: PolicyTestMismatch[] = [];
  const check = (field: PolicyTestMismatch['field'], expected: string | null | undefined, got: string | null): void => {
    if (expected !== undefined && expected !== got) mismatches.push({ field, expected, got });
  };
  check('decision', expect.decision, decision.allow ? 'ALLOW' : 'DENY');
  check('rule', expect.rule, decision.ruleId);
  check('role', expect.role, decision.role);
  check('googleServiceAccount', expect.googleServiceAccount, decision.googleServiceAccount);
  check('serviceClass', expect.serviceClass, decision.serviceClass);
  const dryRun = policy.dryRun(testCase.subject, testCase.request);
  check('dryRun', expect.dryRun, dryRun?.ruleId ?? null);
  return { testCase, decision, dryRun, passed: mismatches.length === 0, mismatches };
}

export function runPolicyTests(policy: CompiledPolicy, cases: readonly PolicyTestCase[]): PolicyTestResult[] {
  return cases.map((testCase) => runPolicyTest(policy, testCase));
}
