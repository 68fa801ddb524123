import { resolve } from 'node:path';
import { demoNames, DEFAULT_DEMO_NAME } from '../../demo/files.ts';
import { cleanDemo, runDemo } from '../../demo/run-demo.ts';
import { mgError } from '../../errors/index.ts';
import { optionalString, type CliCommand } from '../command.ts';
import { DEMO } from '../specs/demo.ts';

export const demoCommand: CliCommand = {
  ...DEMO,
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
