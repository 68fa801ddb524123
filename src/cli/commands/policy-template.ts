/**
 * The files `meshgate policy init` writes, as text: a starting policy for one production
 * namespace, its notes, and the tests it passes. Pure, so tests can hold every combination
 * of options against the real loader and test runner.
 */

export interface PolicyTemplateOptions {
  readonly trustDomain: string;
  /** The production namespace whose services are granted. */
  readonly namespace: string;
  /** Namespaces denied everything: names, or Istio prefix/suffix patterns (`dev-*`). */
  readonly denyNamespaces: readonly string[];
  readonly database: string;
  readonly googleProject: string;
}

export interface TemplateFile {
  /** Relative to the policy directory, `/`-separated. */
  readonly path: string;
  readonly text: string;
}

/** The service accounts and roles the template grants; the files tell users to rename them. */
export const TEMPLATE_NAMES = {
  writerAccount: 'app-writer',
  readerAccount: 'app-reader',
  firestoreAccount: 'reports-reader',
  writerRole: (database: string) => `${database}_writer`,
  readerRole: (database: string) => `${database}_reader`,
} as const;

export const TESTS_FILE = 'tests/policy-tests.yaml';

const q = (text: string): string => JSON.stringify(text);

/** A namespace a pattern matches, for the tests: `dev-*` → `dev-x`, `*-test` → `x-test`. */
export function sampleNamespace(pattern: string): string {
  return pattern.replace('*', 'x');
}

function denyFile(o: PolicyTemplateOptions): string {
  return `# Written by \`meshgate policy init\`. Edit the namespace list to your layout.
#
# Workloads in non-production namespaces never reach the databases behind this meshgate,
# whatever ALLOW rule is added later: a matching DENY beats every ALLOW. The patterns are
# Istio's: an exact name, "dev-*" (a prefix) or "*-test" (a suffix).
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: deny-non-production
spec:
  action: DENY
  rules:
    - id: non-production
      from:
        - source:
            namespaces: [${o.denyNamespaces.map(q).join(', ')}]
`;
}

function mariadbFile(o: PolicyTemplateOptions): string {
  const td = o.trustDomain;
  return `# Written by \`meshgate policy init\`. Edit: the principals (your service accounts), the
# databases and the role names. The roles must exist in MariaDB with the grants each rule
# names (README.md in this directory has the statements); meshgate picks a role, never widens it.
#
# Principals are SPIFFE IDs in Istio's form: <trust domain>/ns/<namespace>/sa/<service account>.
# Nothing matched means deny: a service not named here reaches no database.
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: mariadb-read-write
spec:
  action: ALLOW
  rules:
    # The service that owns the data reads and writes it, as role ${TEMPLATE_NAMES.writerRole(o.database)}
    # (SELECT, INSERT, UPDATE, DELETE on ${o.database}.*).
    - id: writer
      from:
        - source:
            principals: [${q(`${td}/ns/${o.namespace}/sa/${TEMPLATE_NAMES.writerAccount}`)}]
      to:
        - mariadb:
            databases: [${q(o.database)}]
            role: ${TEMPLATE_NAMES.writerRole(o.database)}
---
# Written by \`meshgate policy init\`. A service that only reads, as role
# ${TEMPLATE_NAMES.readerRole(o.database)} (SELECT on ${o.database}.*). Add principals here rather than
# granting the writer role to a service that does not write.
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: mariadb-read-only
spec:
  action: ALLOW
  rules:
    - id: reader
      from:
        - source:
            principals: [${q(`${td}/ns/${o.namespace}/sa/${TEMPLATE_NAMES.readerAccount}`)}]
      to:
        - mariadb:
            databases: [${q(o.database)}]
            role: ${TEMPLATE_NAMES.readerRole(o.database)}
`;
}

function firestoreFile(o: PolicyTemplateOptions): string {
  const account = `${TEMPLATE_NAMES.firestoreAccount}@${o.googleProject}.iam.gserviceaccount.com`;
  return `# Written by \`meshgate policy init\`. Edit: the principal, the collections and the Google
# service account. Delete this file if you do not use Firestore.
#
# The reports service reads (get, list, query, aggregate, listen) every document under the
# reports collection, at any depth, and nothing else. meshgate calls Firestore as the Google
# service account below, which should hold only roles/datastore.viewer; meshgate's own
# account needs roles/iam.serviceAccountTokenCreator on it.
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: firestore-read-only
spec:
  action: ALLOW
  rules:
    - id: reports
      from:
        - source:
            principals: [${q(`${o.trustDomain}/ns/${o.namespace}/sa/${TEMPLATE_NAMES.firestoreAccount}`)}]
      to:
        - firestore:
            collections: ["reports/**"]
            operations: [read]
            serviceAccount: ${account}
`;
}

function notesFile(o: PolicyTemplateOptions): string {
  const writer = TEMPLATE_NAMES.writerRole(o.database);
  const reader = TEMPLATE_NAMES.readerRole(o.database);
  return `# Policy written by \`meshgate policy init\`

meshgate reads every \`*.yaml\` file in this directory (not its subdirectories) and denies
whatever no rule allows. Edit the files in place; each says what to change.

| file | what it decides |
| --- | --- |
| \`00-deny-non-production.yaml\` | namespaces ${o.denyNamespaces.map((n) => `\`${n}\``).join(', ')} reach nothing, whatever else allows |
| \`10-mariadb.yaml\` | \`${o.namespace}/${TEMPLATE_NAMES.writerAccount}\` reads and writes \`${o.database}\` as \`${writer}\`; \`${o.namespace}/${TEMPLATE_NAMES.readerAccount}\` reads it as \`${reader}\` |
| \`20-firestore.yaml\` | \`${o.namespace}/${TEMPLATE_NAMES.firestoreAccount}\` reads Firestore \`reports/**\` |
| \`${TESTS_FILE}\` | what the policy must decide; update it with every change |

## MariaDB roles

meshgate logs in upstream as a short-lived account it creates per identity and grants one of
these roles; the roles hold the privileges. Create them once, as an administrator:

\`\`\`sql
CREATE ROLE ${writer};
GRANT SELECT, INSERT, UPDATE, DELETE ON \`${o.database}\`.* TO ${writer};
CREATE ROLE ${reader};
GRANT SELECT ON \`${o.database}\`.* TO ${reader};
-- meshgate's admin account (upstream.admin in meshgate.yaml) hands the roles out
-- (one role per GRANT: MariaDB refuses a list of roles here):
GRANT ${writer} TO meshgate_admin WITH ADMIN OPTION;
GRANT ${reader} TO meshgate_admin WITH ADMIN OPTION;
\`\`\`

## Before every change ships

\`\`\`sh
meshgate policy validate DIR
meshgate policy test DIR --tests DIR/tests
\`\`\`

(DIR is this directory.) A case that fails prints what it expected, what the policy decided
and why. The test file format is in meshgate's docs/policy-testing.md.
`;
}

function testsFile(o: PolicyTemplateOptions): string {
  const td = o.trustDomain;
  const principal = (ns: string, sa: string): string => q(`spiffe://${td}/ns/${ns}/sa/${sa}`);
  const writer = TEMPLATE_NAMES.writerRole(o.database);
  const reader = TEMPLATE_NAMES.readerRole(o.database);
  const account = `${TEMPLATE_NAMES.firestoreAccount}@${o.googleProject}.iam.gserviceaccount.com`;
  const db = q(o.database);
  // One case per namespace: `dev-*` and `dev-x` would otherwise give two cases of one name.
  const denied = [...new Set(o.denyNamespaces.map(sampleNamespace))]
    .map(
      (namespace) => `
  - name: ${q(`the writer in ${namespace} is denied`)}
    caller: { principal: ${principal(namespace, TEMPLATE_NAMES.writerAccount)} }
    request: { mariadb: { database: ${db} } }
    expect: { decision: DENY, rule: deny-non-production/non-production }`,
    )
    .join('\n');
  return `# Written by \`meshgate policy init\`: what the policy in the directory above must decide.
# Run: meshgate policy test <policy dir> --tests <policy dir>/tests
# Add a case for every rule you add or change, and one for what must stay denied.
#
# A case: a name, the caller (principal; optional authMethod mtls|jwt|xfcc and token
# claims), the request (mariadb: database, direct; or firestore: path, operation, database)
# and what to expect (decision ALLOW|DENY; optional rule, role, googleServiceAccount,
# serviceClass). rule: default-deny means no rule matched.
tests:
  - name: the writer reads and writes ${o.database}
    caller: { principal: ${principal(o.namespace, TEMPLATE_NAMES.writerAccount)} }
    request: { mariadb: { database: ${db} } }
    expect: { decision: ALLOW, rule: mariadb-read-write/writer, role: ${writer} }

  - name: the reader reads ${o.database}
    caller: { principal: ${principal(o.namespace, TEMPLATE_NAMES.readerAccount)} }
    request: { mariadb: { database: ${db} } }
    expect: { decision: ALLOW, rule: mariadb-read-only/reader, role: ${reader} }

  - name: the reader reaches no other database
    caller: { principal: ${principal(o.namespace, TEMPLATE_NAMES.readerAccount)} }
    request: { mariadb: { database: ${q(`${o.database}_other`)} } }
    expect: { decision: DENY, rule: default-deny }

  - name: a connection that names no database is denied
    caller: { principal: ${principal(o.namespace, TEMPLATE_NAMES.writerAccount)} }
    request: { mariadb: { database: null } }
    expect: { decision: DENY, rule: default-deny }

  - name: no direct credentials for the writer
    caller: { principal: ${principal(o.namespace, TEMPLATE_NAMES.writerAccount)} }
    request: { mariadb: { database: ${db}, direct: true } }
    expect: { decision: DENY, rule: default-deny }

  - name: a service no rule names is denied
    caller: { principal: ${principal(o.namespace, 'someone-else')} }
    request: { mariadb: { database: ${db} } }
    expect: { decision: DENY, rule: default-deny }
${denied}

  - name: the reports service reads Firestore reports
    caller: { principal: ${principal(o.namespace, TEMPLATE_NAMES.firestoreAccount)} }
    request: { firestore: { path: reports/2026/days/d1, operation: read } }
    expect: { decision: ALLOW, rule: firestore-read-only/reports, googleServiceAccount: ${account} }

  - name: the reports service does not write Firestore
    caller: { principal: ${principal(o.namespace, TEMPLATE_NAMES.firestoreAccount)} }
    request: { firestore: { path: reports/r1, operation: write } }
    expect: { decision: DENY, rule: default-deny }
`;
}

/** The files, in the order they are written and listed. */
export function policyTemplate(options: PolicyTemplateOptions): TemplateFile[] {
  return [
    { path: '00-deny-non-production.yaml', text: denyFile(options) },
    { path: '10-mariadb.yaml', text: mariadbFile(options) },
    { path: '20-firestore.yaml', text: firestoreFile(options) },
    { path: 'README.md', text: notesFile(options) },
    { path: TESTS_FILE, text: testsFile(options) },
  ];
}
