import { loadConfigFile } from '../../config/load.ts';
import { jsonLogger } from '../../log.ts';
import { startMeshgate } from '../../server.ts';
import { parseDuration } from '../../identity/duration.ts';
import { optionalString, requireString, type CliCommand } from '../command.ts';

export const serveCommand: CliCommand = {
  path: ['serve'],
  summary: 'run the proxy: MySQL-protocol listener with mTLS identity, policy and audit',
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
  ].join('\n'),
  options: { config: { type: 'string', short: 'c' }, 'wait-for-upstream': { type: 'string' } },
  async run(values, _positionals, io) {
    const wait = optionalString(values, 'wait-for-upstream');
    const waitForUpstreamMs = wait === undefined ? 0 : parseDuration(wait, '--wait-for-upstream') * 1000;
    const config = loadConfigFile(requireString(values, 'config'));
    const log = jsonLogger((line) => io.err(line));
    const running = await startMeshgate(config, log, io.env, { waitForUpstreamMs });
    io.out(`meshgate: listening on ${running.address.address}:${running.address.port}`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    log.info('shutting down');
    await running.close();
    return 0;
  },
};
