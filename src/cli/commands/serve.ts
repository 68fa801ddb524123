import { loadConfigFile } from '../../config/load.ts';
import { jsonLogger } from '../../log.ts';
import { startMeshgate } from '../../server.ts';
import { requireString, type CliCommand } from '../command.ts';

export const serveCommand: CliCommand = {
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
  async run(values, _positionals, io) {
    const config = loadConfigFile(requireString(values, 'config'));
    const log = jsonLogger((line) => io.err(line));
    const running = await startMeshgate(config, log, io.env);
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
