import type { CommandSpec } from '../command.ts';

export const SERVE: CommandSpec = {
  path: ['serve'],
  summary: 'run the proxy: MySQL-protocol listener with mTLS identity, policy and audit',
  usage: '--config meshgate.yaml',
  help: [
    'options:',
    '  -c, --config PATH       the configuration file (see deploy/examples/meshgate.yaml)',
    '',
    'meshgate logs JSON lines to stderr and stops cleanly on SIGINT/SIGTERM, flushing audit.',
  ].join('\n'),
  options: { config: { type: 'string', short: 'c' } },
};
