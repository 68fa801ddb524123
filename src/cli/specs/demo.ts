import type { CommandSpec } from '../command.ts';

export const DEMO: CommandSpec = {
  path: ['demo'],
  summary: 'run meshgate end to end on embedded defaults: CA, policy, proxy, real clients, audit',
  usage: '[--dir .meshgate/demo] [--mariadb mysql://root@127.0.0.1:3306] [--keep]',
  help: [
    'options:',
    '  --dir DIR               where the demo writes its CA, certificates, policy, config and audit',
    '                          (default .meshgate/demo)',
    '  --mariadb URL           an administrative MariaDB login the demo may create a database, roles',
    '                          and users with (default $MESHGATE_DEMO_MARIADB or mysql://root@127.0.0.1:3306)',
    '  --keep                  leave the demo database and accounts in MariaDB afterwards',
  ].join('\n'),
  options: { dir: { type: 'string' }, mariadb: { type: 'string' }, keep: { type: 'boolean' } },
};
