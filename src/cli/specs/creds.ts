/** What `meshgate creds ...` accepts and says about itself; the commands are in ../commands/creds.ts. */
import type { CommandSpec, OptionSpecs } from '../command.ts';

/** Where a token comes from when it is not on the command line (which `ps` shows). */
export const TOKEN_ENV = 'MESHGATE_TOKEN';

const TARGET_OPTIONS: OptionSpecs = {
  config: { type: 'string', short: 'c' },
  server: { type: 'string' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
};

const TARGET_HELP = [
  '  -c, --config PATH       the meshgate configuration file: work on its state store and',
  '                          MariaDB directly (works whether or not meshgate is running)',
  '  --server URL            instead, go through a running meshgate\'s admin API,',
  '                          e.g. https://meshgate.example:9440 (the admin section of its config)',
  '  --ca PATH               with --server: the bundle that signs meshgate\'s certificate',
  '  --cert PATH             with --server: your client certificate (an SVID; the admin',
  '                          routes need one whose SPIFFE ID is in admin.principals)',
  '  --key PATH              with --server: the private key of --cert',
];

export const CREDS_ISSUE: CommandSpec = {
  path: ['creds', 'issue'],
  summary: 'get a short-lived MariaDB account for a direct connection (CI jobs), where a rule says direct: true',
  usage: '(--config F | --server URL) --database NAME [--token-file PATH | --token JWT] [--ttl 15m] [--json]',
  help: [
    'options:',
    ...TARGET_HELP,
    '  --database NAME         the database to connect to; policy is evaluated for it',
    `  --token-file PATH       read the caller's token (a JWT from a configured issuer) from a file`,
    `  --token JWT             the token itself; prefer --token-file or ${TOKEN_ENV}, since a`,
    '                          command line is visible to other users of the machine',
    '  --ttl DURATION          how long the account lives: s, m, h or d (default:',
    '                          upstream.credentials.issuedTtl, at most issuedMaxTtl)',
    '  --json                  print one JSON object: host, port, username, password,',
    '                          database, leaseId, expiresAt, principal, role, ruleId',
    '',
    `environment:`,
    `  ${TOKEN_ENV}          the token, when neither --token nor --token-file is given`,
    '',
    "The token is verified against the config's tokens.issuers and the identity it proves is",
    'evaluated by policy for --database: only an ALLOW rule whose mariadb target says',
    'direct: true grants direct credentials. A denial exits 1 with [MG_POLICY_DENIED] naming',
    'the rule, and nothing is created. Allowed, meshgate creates a MariaDB account with the',
    "role policy names and prints where to connect (upstream.host/port) and as whom. The",
    'password is printed only here, once, to stdout; it is not stored or logged. With --server',
    'and a client certificate but no token, the certificate is the identity.',
    '',
    'meshgate does not see the statements run on this account: no policy per statement, no',
    'audit of them. Per identity, upstream.credentials.issuedMaxLive live ones at once and',
    'issuedPerMinute issues a minute; past either, [MG_DIRECT_CREDS_LIMIT] says when to retry.',
    'Through --server every issue is an audit event; --config works with meshgate\'s own admin',
    'credential on its host and is not in a running meshgate\'s audit file: give workloads --server.',
    '',
    'examples:',
    '  # a pod with a projected service-account token',
    '  meshgate creds issue --server https://meshgate.example:9440 --ca ca.pem --database shop \\',
    '      --token-file /var/run/secrets/tokens/meshgate',
    '  # GitHub Actions (permissions: id-token: write), through a running meshgate',
    `  export ${TOKEN_ENV}=$(curl -sH "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" \\`,
    '      "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=meshgate" | jq -r .value)',
    '  meshgate creds issue --server https://meshgate.example:9440 --ca ca.pem --database shop --ttl 10m --json',
  ].join('\n'),
  options: { ...TARGET_OPTIONS, token: { type: 'string' }, 'token-file': { type: 'string' }, database: { type: 'string' }, ttl: { type: 'string' }, json: { type: 'boolean' } },
};

export const CREDS_LIST: CommandSpec = {
  path: ['creds', 'list'],
  summary: 'list credential leases: who holds which MariaDB account, in which role, until when',
  usage: '(--config F | --server URL) [--all] [--json]',
  help: [
    'options:',
    ...TARGET_HELP,
    '  --all                   also list revoked leases (kept for a while as history)',
    '  --json                  print one JSON object: { "leases": [ ... ] }',
    '',
    'Shows live leases (creating, active, revoking): both the accounts meshgate uses for its',
    "own sessions (purpose session) and those handed out by `creds issue` (purpose issued).",
    'Passwords are never shown: meshgate does not keep them.',
  ].join('\n'),
  options: { ...TARGET_OPTIONS, all: { type: 'boolean' }, json: { type: 'boolean' } },
};

export const CREDS_REVOKE: CommandSpec = {
  path: ['creds', 'revoke'],
  summary: 'end leases now: drop their MariaDB accounts and kill their connections',
  usage: '(--config F | --server URL) (--lease ID | --identity SPIFFE_ID | --role ROLE) [--reason TEXT]',
  help: [
    'options:',
    ...TARGET_HELP,
    '  --lease ID              one lease (an id from `meshgate creds list`)',
    '  --identity SPIFFE_ID    every active lease of an identity, e.g. spiffe://example.org/ns/ci/sa/deploy',
    '                          (or the Istio form example.org/ns/ci/sa/deploy)',
    '  --role ROLE             every active lease in a MariaDB role (with --identity: both must match)',
    '  --reason TEXT           why, recorded with the lease (default: revoked with meshgate creds revoke)',
    '',
    'Each revoked lease\'s MariaDB account is dropped and its open connections are killed.',
    'An unknown lease id exits 1 with [MG_LEASE_NOT_FOUND]; when nothing live matches, it',
    'says so and exits 0. Safe to run while meshgate serves, and on several hosts at once.',
  ].join('\n'),
  options: { ...TARGET_OPTIONS, lease: { type: 'string' }, identity: { type: 'string' }, role: { type: 'string' }, reason: { type: 'string' } },
};

export const CREDS_ROTATE_ROOT: CommandSpec = {
  path: ['creds', 'rotate-root'],
  summary: "replace meshgate's own MariaDB admin password with a new random one",
  usage: '(--config F | --server URL --cert C --key K)',
  help: [
    'options:',
    ...TARGET_HELP,
    '',
    'Sets a new random password on the account in upstream.credentials.admin, in MariaDB and',
    'in the file admin.password.file names (written beside it first, so a crash loses',
    'neither). The password is never printed. Needs admin.password from a file, not an env var.',
    'A meshgate server keeps using the password it started with until it restarts: while',
    'one runs with this config, rotate through it (--server) so it switches at once.',
  ].join('\n'),
  options: { ...TARGET_OPTIONS },
};
