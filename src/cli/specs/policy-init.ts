/** What `meshgate policy init` accepts and says; the command is in ../commands/policy-init.ts. */
import type { CommandSpec } from '../command.ts';

/** The defaults the written policy starts from; the help states them. */
export const POLICY_INIT_DEFAULTS = {
  trustDomain: 'cluster.local',
  namespace: 'production',
  denyNamespaces: ['staging', 'dev'],
  database: 'app',
  googleProject: 'my-project',
} as const;

export const POLICY_INIT: CommandSpec = {
  path: ['policy', 'init'],
  summary: 'write a starting policy (non-production DENY, read-write and read-only services, Firestore read-only) and its tests',
  usage: '--dir DIR [--trust-domain TD] [--namespace NS] [--deny-namespaces staging,dev] [--database NAME] [--google-project ID] [--force]',
  help: [
    '  --dir DIR               where to write the policy (created if missing)',
    `  --trust-domain TD       the mesh's trust domain (default ${POLICY_INIT_DEFAULTS.trustDomain})`,
    `  --namespace NS          the production namespace whose services are granted (default ${POLICY_INIT_DEFAULTS.namespace})`,
    `  --deny-namespaces LIST  namespaces denied everything, comma-separated; "dev-*" matches a prefix`,
    `                          (default ${POLICY_INIT_DEFAULTS.denyNamespaces.join(',')})`,
    `  --database NAME         the MariaDB database the services use (default ${POLICY_INIT_DEFAULTS.database})`,
    `  --google-project ID     the Google project of the Firestore service account (default ${POLICY_INIT_DEFAULTS.googleProject})`,
    '  --force                 replace files of the same names; without it nothing is written',
    '                          when any of them exists',
    '',
    'Writes DIR/00-deny-non-production.yaml, 10-mariadb.yaml, 20-firestore.yaml, README.md (the',
    'MariaDB roles and GRANT statements they need) and DIR/tests/policy-tests.yaml, which',
    '`meshgate policy test DIR --tests DIR/tests` passes. Every file says what to edit.',
  ].join('\n'),
  options: {
    dir: { type: 'string' },
    'trust-domain': { type: 'string' },
    namespace: { type: 'string' },
    'deny-namespaces': { type: 'string' },
    database: { type: 'string' },
    'google-project': { type: 'string' },
    force: { type: 'boolean' },
  },
};
