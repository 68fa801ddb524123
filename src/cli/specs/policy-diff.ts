/** What `meshgate policy diff` accepts and says about itself; the command is in ../commands/policy-diff.ts. */
import type { CommandSpec } from '../command.ts';

export const POLICY_DIFF: CommandSpec = {
  path: ['policy', 'diff'],
  summary: 'list which identities gain or lose which access between two policy directories',
  usage: 'OLD NEW [--audit FILE ...] [--json] [--exit-code]',
  help: [
    '  OLD NEW                 policy directories before and after the change (e.g. the',
    '                          base branch checked out beside the pull request)',
    '  --audit FILE            an audit log (file or directory, as for `audit query`): every',
    '                          identity it saw is tried too, and listed by name; repeatable',
    '  --json                  one JSON document for tools instead of the table',
    '  --exit-code             exit 1 when there is any difference, 0 when none (like',
    '                          `git diff --exit-code`); without it, 0 either way',
    '',
    'Tries every principal either policy names, identities seen in the audit, and stand-ins',
    'for what the policies name only by pattern (labelled "any sa in ns staging", "any caller',
    'with claims ..."), against every MariaDB database either policy names, no database, a',
    'database no rule names and direct credentials, and each Firestore collection pattern as',
    'a document and a collection, read, write and admin. One line per caller and request',
    'whose decision differs: gain (deny → allow), lose (allow → deny) or change (another',
    'role, Google service account, service class or LOCAL INFILE), with the deciding rule',
    'of both sides; dry-run (a dry-run rule, action AUDIT, would decide otherwise, and the',
    'two sides differ in that); then a summary. A policy that does not load exits 1 with',
    'its problems. docs/policy-diff.md has a pull-request workflow.',
  ].join('\n'),
  options: {
    audit: { type: 'string', multiple: true },
    json: { type: 'boolean' },
    'exit-code': { type: 'boolean' },
  },
  allowPositionals: true,
};
