import type { CommandSpec } from '../command.ts';

/** Repeated from src/demo/files.ts (DEFAULT_DEMO_NAME) so help loads nothing heavy; a test pins it. */
export const DEMO_DEFAULT_NAME = 'meshgate_demo';

export const DEMO: CommandSpec = {
  path: ['demo'],
  summary: 'run meshgate end to end on embedded defaults: CA, policy, proxy, real clients, audit',
  usage: '[--dir .meshgate/demo] [--mariadb mysql://root@127.0.0.1:3306] [--name meshgate_demo] [--keep | --clean]',
  help: [
    'options:',
    '  --dir DIR               where the demo writes its CA, certificates, policy, config and audit',
    '                          (default .meshgate/demo)',
    '  --mariadb URL           an administrative MariaDB login the demo may create a database, roles',
    '                          and users with (default $MESHGATE_DEMO_MARIADB or mysql://root@127.0.0.1:3306)',
    `  --name NAME             the MariaDB database, and the prefix of the demo's roles and admin account`,
    `                          (default ${DEMO_DEFAULT_NAME}); demos with different names can run side by side`,
    '  --keep                  leave the demo database and accounts in MariaDB afterwards, to run',
    '                          `meshgate serve --config DIR/meshgate.yaml` yourself',
    '  --clean                 drop what a --keep run left in MariaDB (recorded in DIR), and stop',
  ].join('\n'),
  options: { dir: { type: 'string' }, mariadb: { type: 'string' }, name: { type: 'string' }, keep: { type: 'boolean' }, clean: { type: 'boolean' } },
};
