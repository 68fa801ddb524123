/** What `meshgate policy ...` accepts and says about itself; the commands are in ../commands/policy.ts. */
import type { CommandSpec } from '../command.ts';

/** Exit code of `policy explain` for a denial, distinct from 1 (error) and 2 (usage). */
export const EXIT_DENIED = 3;

// policy/schema.ts owns this default, but loading it loads zod; test/unit/cli/specs.test.ts
// keeps the two equal.
export const FIRESTORE_DEFAULT_DATABASE = '(default)';

export const POLICY_VALIDATE: CommandSpec = {
  path: ['policy', 'validate'],
  summary: 'check that a policy directory loads and compiles',
  usage: 'DIR',
  help: [
    '  DIR                     directory of AccessPolicy documents (*.yaml, *.yml)',
    '',
    'Prints the documents and rules found in each file. Any problem (unknown field, missing',
    'role on an ALLOW rule, duplicate name, YAML syntax) fails with exit code 1 and names',
    'the file, the document and the field.',
  ].join('\n'),
  options: {},
  allowPositionals: true,
};

export const POLICY_EXPLAIN: CommandSpec = {
  path: ['policy', 'explain'],
  summary: 'show what a policy directory decides for one caller and database or Firestore path',
  usage:
    '--dir DIR --principal ID [--database NAME [--direct] | --firestore-path PATH --operation OP [--firestore-database ID]] ' +
    '[--auth-method METHOD] [--claim NAME=VALUE ...]',
  help: [
    '  --dir DIR               directory of AccessPolicy documents',
    '  --principal ID          caller: spiffe://<td>/ns/<ns>/sa/<sa> or Istio form <td>/ns/<ns>/sa/<sa>',
    '                          (any SPIFFE ID, e.g. ci.example/github/acme/shop/env/production)',
    '  --database NAME         MariaDB database the client names at connect; omit for none',
    '  --direct                ask about direct credentials (`creds issue`) instead of a',
    '                          session: only ALLOW rules with direct: true grant them',
    '  --firestore-path PATH   instead of a MariaDB connection, one Firestore path inside the',
    '                          database: a document orders/o1 (even segments), a collection',
    '                          orders or orders/o1/items (odd), a collection group',
    '                          orders/o1/**/items or **/items (a query with allDescendants),',
    '                          a subtree orders/o1/** or ** (every collection at any depth:',
    '                          recursiveDelete, a listing without collection id), or / for',
    '                          the database root',
    '  --operation OP          with --firestore-path: read (get, list, query, aggregate,',
    '                          listen), write (create, update, delete) or admin (list',
    '                          collection ids, partition)',
    '  --firestore-database ID',
    `                          with --firestore-path: the Firestore database id (default "${FIRESTORE_DEFAULT_DATABASE}")`,
    '  --auth-method METHOD    how the caller proved it: mtls, jwt or xfcc (default: jwt',
    '                          with --claim, else mtls)',
    '  --claim NAME=VALUE      a verified token claim, e.g. environment=production; repeat',
    '                          a name for a list claim (--claim groups=eng --claim groups=ops)',
    '',
    'Prints the decision, the deciding rule, the role (for Firestore: the Google service',
    'account) and the reason, then every rule in evaluation order (DENY rules first) with',
    'whether it matched and why.',
    `Exit code: 0 when allowed, ${EXIT_DENIED} when denied, 1 when the policy does not load.`,
  ].join('\n'),
  options: {
    dir: { type: 'string' },
    principal: { type: 'string' },
    database: { type: 'string' },
    direct: { type: 'boolean' },
    'auth-method': { type: 'string' },
    claim: { type: 'string', multiple: true },
    'firestore-path': { type: 'string' },
    operation: { type: 'string' },
    'firestore-database': { type: 'string' },
  },
};
