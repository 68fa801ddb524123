/** What `meshgate policy test` accepts and says; the command is in ../commands/policy-test.ts. */
import type { CommandSpec } from '../command.ts';

export const POLICY_TEST: CommandSpec = {
  path: ['policy', 'test'],
  summary: 'run YAML test cases against a policy directory: expected decision, rule, role per caller (for CI)',
  usage: 'DIR --tests FILE|DIR [--tests …] [--json]',
  help: [
    '  DIR                     directory of AccessPolicy documents (*.yaml, *.yml; not its subdirectories)',
    '  --tests FILE|DIR        a test file, or a directory of them (*.yaml, *.yml); repeatable',
    '  --json                  one JSON report (cases, expected, got, reasons) instead of text',
    '',
    'Each case names a caller (principal, optional authMethod and token claims), a request',
    '(mariadb: database, direct; or firestore: path, operation, database) and what the policy',
    'must decide (decision ALLOW or DENY; optionally rule, role, googleServiceAccount,',
    'serviceClass, and dryRun: the action AUDIT rule that would decide, or null for none).',
    'Evaluation is the proxy\'s own; nothing connects to MariaDB or Google, so',
    'it runs in any CI. Prints one line per case (ok, or FAIL with expected, got and the',
    'policy\'s reason) and "N passed, N failed". Format: docs/policy-testing.md.',
    'Exit code: 0 when every case passes, 1 when one fails or a policy or test file does not',
    'load (the message names file, case, field and line), 2 for a usage mistake.',
  ].join('\n'),
  options: {
    tests: { type: 'string', multiple: true },
    json: { type: 'boolean' },
  },
  allowPositionals: true,
};
