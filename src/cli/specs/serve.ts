import type { CommandSpec } from '../command.ts';

export const SERVE: CommandSpec = {
  path: ['serve'],
  summary: 'run the proxy: MySQL and Firestore listeners with mesh identity, policy and audit',
  usage: '--config meshgate.yaml [--wait-for-upstream 60s]',
  help: [
    'options:',
    '  -c, --config PATH             the configuration file (see deploy/examples/meshgate.yaml)',
    '  --wait-for-upstream DURATION  at start, wait this long (e.g. 60s, 5m) for MariaDB and Firestore',
    '                                to answer, retrying with backoff; without it meshgate stops at once',
    '                                (exit 1) when an upstream does not answer. A refused login never waits.',
    '',
    'At start meshgate logs in to MariaDB with each account it will use and reaches its Firestore',
    'upstream; each failure is a log line naming the account, the address and the fix.',
    'meshgate logs JSON lines to stderr and stops cleanly on SIGINT/SIGTERM, flushing audit.',
    "SIGHUP re-reads the config file and applies the service classes' limits (throttle.classes);",
    'a file that does not load, or that adds or removes the throttle section, changes nothing.',
    'SIGHUP also reloads the policy directory, as a change to its files does (policy.watch) and',
    'POST /v1/policy/reload on the admin API: a version that does not load is refused (log line,',
    'audit event, meshgate_policy_reloads_total{outcome="refused"}) and the last good one keeps',
    'running; policy.openSessions says whether open sessions keep their decision or are judged again.',
  ].join('\n'),
  options: { config: { type: 'string', short: 'c' }, 'wait-for-upstream': { type: 'string' } },
};
