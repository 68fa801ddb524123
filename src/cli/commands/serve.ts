import { loadConfigFile } from '../../config/load.ts';
import { jsonLogger } from '../../log.ts';
import { startMeshgate } from '../../server.ts';
import { requireString, type CliCommand } from '../command.ts';
import { SERVE } from '../specs/serve.ts';

export const serveCommand: CliCommand = {
  ...SERVE,
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
