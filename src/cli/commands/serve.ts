import { loadConfigFile } from '../../config/load.ts';
import { jsonLogger } from '../../log.ts';
import { startMeshgate } from '../../server.ts';
import { optionalString, requireString, type CliCommand } from '../command.ts';
import { parseDuration } from '../../identity/index.ts';
import { SERVE } from '../specs/serve.ts';

export const serveCommand: CliCommand = {
  ...SERVE,
  async run(values, _positionals, io) {
    const wait = optionalString(values, 'wait-for-upstream');
    const waitForUpstreamMs = wait === undefined ? 0 : parseDuration(wait, '--wait-for-upstream') * 1000;
    const configFile = requireString(values, 'config');
    const config = loadConfigFile(configFile);
    const log = jsonLogger((line) => io.err(line));
    const running = await startMeshgate(config, log, io.env, { waitForUpstreamMs });
    // Before the line that says it is up: a supervisor that signals as soon as it reads the
    // line must find the handler in place, not the default action (exit without flushing audit).
    const stopped = new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    // SIGHUP: the service classes' limits as the file says now, then the policy directory; a
    // file that does not load changes nothing (the log says why, and the policy's refusal is
    // an audit event). Limits first: a policy naming a new class needs its limits in place.
    const reload = () => {
      try {
        log.info(running.reloadLimits(loadConfigFile(configFile)), { config: configFile });
      } catch (error) {
        log.error(`SIGHUP: kept the limits in force: ${(error as Error).message}`, { config: configFile });
      }
      void running.reloadPolicy('signal');
    };
    process.on('SIGHUP', reload);
    // The MySQL port first (registry order): scripts that wait for this line read the first address.
    io.out(`meshgate: listening on ${running.endpoints.map((e) => `${e.host}:${e.port} (${e.engine})`).join(', ')}`);
    await stopped;
    process.off('SIGHUP', reload);
    log.info('shutting down');
    await running.close();
    return 0;
  },
};
