/** What `meshgate analyze` accepts and says about itself; the command is in ../commands/analyze.ts. */
import type { CommandSpec } from '../command.ts';

// analyze/findings.ts owns this default; test/unit/cli/specs.test.ts keeps the two equal.
export const ANALYZE_DEFAULT_MIN_DENIALS = 5;

export const ANALYZE: CommandSpec = {
  path: ['analyze'],
  summary: 'least privilege from the audit: unused rules, unused write access, repeated denials',
  usage: '--policy DIR --audit FILE|DIR [FILE|DIR ...] [--mariadb URL] [--suggest] [--json] [--min-denials N]',
  help: [
    '  --policy DIR            directory of AccessPolicy documents (as `serve` loads it)',
    '  --audit FILE|DIR        the JSONL audit: its active file, a rotated one or the directory;',
    '                          every rotated file of the log is read. Repeat it, or list more',
    '                          logs after it, to read several (one per replica)',
    '  --mariadb URL           read the roles\' grants from MariaDB through an admin account',
    '                          (mysql://root@127.0.0.1:3306/, the password in MYSQL_PWD or in',
    '                          the URL): SHOW GRANTS FOR each',
    '                          role and the tables of the databases they reach. Without it a',
    '                          role is taken to write unless its name says it reads (ro, read,',
    '                          reader, readonly, select, viewer, report, analytics), and tables',
    '                          are not listed',
    '  --suggest               also print a proposed patch of the policy files (unified diff,',
    '                          for `git apply`): read-only roles, narrower Firestore operations,',
    '                          unused rules commented out. Nothing is changed',
    '  --json                  one JSON object (findings, and `patch` with --suggest)',
    `  --min-denials N         report a caller refused at least N times (default ${ANALYZE_DEFAULT_MIN_DENIALS})`,
    '',
    'Reports, for the window the audit covers (first to last event): rules that decided',
    'nothing; identities allowed a writing role whose statements never wrote (and the role',
    'of the policy that grants only SELECT on the same databases); tables a role may touch',
    'that no statement named; Firestore collection patterns no call reached; callers refused',
    'repeatedly; Firestore identities allowed to write that only read.',
    'Exit code: 0 with or without findings (it is a report), 1 when the policy, the audit or',
    'the grants cannot be read, 2 for a usage error.',
  ].join('\n'),
  options: {
    policy: { type: 'string' },
    audit: { type: 'string', multiple: true },
    mariadb: { type: 'string' },
    suggest: { type: 'boolean' },
    json: { type: 'boolean' },
    'min-denials': { type: 'string' },
  },
  allowPositionals: true,
};
