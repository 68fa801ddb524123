import { resolve } from 'node:path';
import { demoNames, DEFAULT_DEMO_NAME } from '../../demo/files.ts';
import { cleanDemo, runDemo } from '../../demo/run-demo.ts';
import { mgError } from '../../errors/index.ts';
import { optionalString, type CliCommand } from '../command.ts';

export const demoCommand: CliCommand = {
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
    `                          (default ${DEFAULT_DEMO_NAME}); demos with different names can run side by side`,
    '  --keep                  leave the demo database and accounts in MariaDB afterwards, to run',
    '                          `meshgate serve --config DIR/meshgate.yaml` yourself',
    '  --clean                 drop what a --keep run left in MariaDB (recorded in DIR), and stop',
  ].join('\n'),
  options: { dir: { type: 'string' }, mariadb: { type: 'string' }, name: { type: 'string' }, keep: { type: 'boolean' }, clean: { type: 'boolean' } },
  async run(values, _positionals, io) {
    const dir = resolve(io.cwd, optionalString(values, 'dir') ?? '.meshgate/demo');
    const mariadb = parseMariadbUrl(optionalString(values, 'mariadb') ?? io.env.MESHGATE_DEMO_MARIADB ?? 'mysql://root@127.0.0.1:3306');
    if (values.clean === true) {
      if (values.keep === true) throw mgError('MG_USAGE', '--keep and --clean exclude each other: --clean drops what an earlier --keep left');
      await cleanDemo({ dir, mariadb }, io);
      return 0;
    }
    const names = demoNames(optionalString(values, 'name') ?? DEFAULT_DEMO_NAME);
    const asExpected = await runDemo({ dir, mariadb, keep: values.keep === true, names }, io);
    if (!asExpected) io.err('meshgate demo: some outcomes differ from what the demo expects (see above)');
    return asExpected ? 0 : 1;
  },
};

function parseMariadbUrl(text: string): { host: string; port: number; user: string; password: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw mgError('MG_USAGE', `--mariadb: '${text}' is not a URL; use mysql://user:password@host:port`);
  }
  if (url.protocol !== 'mysql:' && url.protocol !== 'mariadb:') {
    throw mgError('MG_USAGE', `--mariadb: use a mysql:// URL, not ${url.protocol}//`);
  }
  return {
    host: url.hostname || '127.0.0.1',
    port: url.port === '' ? 3306 : Number(url.port),
    user: decodeURIComponent(url.username || 'root'),
    password: decodeURIComponent(url.password),
  };
}
