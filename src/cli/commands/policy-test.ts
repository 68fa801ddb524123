/**
 * `meshgate policy test`: a policy directory against YAML test cases, for CI. Reads files and
 * prints; parsing the cases and evaluating them is src/policy's (test-file.ts, test-run.ts).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { mgError } from '../../errors/index.ts';
import { loadPolicyDir, loadPolicyTests, type PolicySourceText, type PolicyTestCase, type PolicyTestResult, runPolicyTests } from '../../policy/index.ts';
import { UsageError, type CliCommand, type CliIO } from '../command.ts';
import { POLICY_TEST } from '../specs/policy-test.ts';

const YAML_FILE = /\.ya?ml$/;

function cannotRead(what: string, path: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  return mgError('MG_POLICY_TEST_INVALID', `cannot read ${what} ${path} (${code})`, error);
}

/** A file as given, or a directory's *.yaml/*.yml in code-unit order (as the policy loader). */
async function readTestSources(paths: readonly string[], cwd: string): Promise<PolicySourceText[]> {
  const sources: PolicySourceText[] = [];
  for (const given of paths) {
    const absolute = resolve(cwd, given);
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(absolute)).isDirectory();
    } catch (error) {
      throw cannotRead('policy test file', given, error);
    }
    const names = isDirectory ? (await readdir(absolute)).filter((n) => YAML_FILE.test(n) && !n.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) : [null];
    if (isDirectory && names.length === 0) throw mgError('MG_POLICY_TEST_INVALID', `no *.yaml test files in ${given}`);
    for (const name of names) {
      const path = name === null ? absolute : join(absolute, name);
      const shown = name === null ? given : join(given, name);
      try {
        sources.push({ name: shown, text: await readFile(path, 'utf8') });
      } catch (error) {
        throw cannotRead('policy test file', shown, error);
      }
    }
  }
  return sources;
}

const show = (field: string, value: string | null): string => (value !== null ? value : field === 'rule' ? 'default-deny' : 'none');

/** The reason of the dry run too when a dry-run expectation failed: it is what differs. */
function reasons(result: PolicyTestResult): string {
  const dry = result.mismatches.some((m) => m.field === 'dryRun') && result.dryRun !== null ? `; dry run: ${result.dryRun.reason}` : '';
  return `reason: ${result.decision.reason}${dry}`;
}

function where(testCase: PolicyTestCase): string {
  return `${testCase.file}${testCase.line === null ? '' : `:${testCase.line}`}`;
}

/** `ok    name`, or `FAIL  name (file:line): rule: expected X, got Y; …; reason: …` on one line. */
function reportLine(result: PolicyTestResult): string {
  const { testCase } = result;
  if (result.passed) return `ok    ${testCase.name}`;
  const diffs = result.mismatches.map((m) => `${m.field}: expected ${show(m.field, m.expected)}, got ${show(m.field, m.got)}`);
  return `FAIL  ${testCase.name} (${where(testCase)}): ${diffs.join('; ')}; ${reasons(result)}`;
}

function jsonReport(dir: string, version: string, results: readonly PolicyTestResult[]): string {
  const failed = results.filter((r) => !r.passed).length;
  return JSON.stringify({
    policy: { dir, version },
    passed: results.length - failed,
    failed,
    cases: results.map(({ testCase, decision, dryRun, passed, mismatches }) => ({
      name: testCase.name,
      file: testCase.file,
      line: testCase.line,
      passed,
      expected: testCase.expect,
      got: {
        decision: decision.allow ? 'ALLOW' : 'DENY',
        rule: decision.ruleId,
        role: decision.role,
        googleServiceAccount: decision.googleServiceAccount,
        serviceClass: decision.serviceClass,
        reason: decision.reason,
        dryRun: dryRun === null ? null : { decision: dryRun.allow ? 'ALLOW' : 'DENY', rule: dryRun.ruleId, reason: dryRun.reason },
      },
      mismatches,
    })),
  });
}

const test: CliCommand = {
  ...POLICY_TEST,
  async run(values, positionals, io: CliIO) {
    if (positionals.length !== 1) throw new UsageError('expected exactly one policy directory');
    const testPaths = Array.isArray(values.tests) ? values.tests.filter((t): t is string => typeof t === 'string' && t !== '') : [];
    if (testPaths.length === 0) throw new UsageError('--tests is required: a test file or a directory of them');
    const dir = positionals[0]!;
    const policy = await loadPolicyDir(dir, { cwd: io.cwd });
    const cases = loadPolicyTests(await readTestSources(testPaths, io.cwd));
    const results = runPolicyTests(policy, cases);
    const failed = results.filter((r) => !r.passed).length;
    if (values.json === true) {
      io.out(jsonReport(dir, policy.version, results));
    } else {
      for (const result of results) io.out(reportLine(result));
      io.out(`${results.length - failed} passed, ${failed} failed`);
    }
    return failed === 0 ? 0 : 1;
  },
};

export const policyTestCommand: CliCommand = test;
