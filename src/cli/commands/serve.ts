import { loadConfigFile } from '../../config/load.ts';
import { jsonLogger, type Logger } from '../../log.ts';
import { startMeshgate, type RunningMeshgate } from '../../server.ts';
import { optionalString, type CliCommand } from '../command.ts';
import { parseDuration } from '../../identity/index.ts';
import { mgError } from '../../errors/index.ts';
import { SERVE } from '../specs/serve.ts';

/** Where a pod's config is mounted when neither --config nor MESHGATE_CONFIG says otherwise: nowhere by default. */
const CONFIG_ENV = 'MESHGATE_CONFIG';

export const serveCommand: CliCommand = {
  ...SERVE,
  async run(values, _positionals, io) {
    const wait = optionalString(values, 'wait-for-upstream');
    const waitForUpstreamMs = wait === undefined ? 0 : parseDuration(wait, '--wait-for-upstream') * 1000;
    const configFile = optionalString(values, 'config') ?? io.env[CONFIG_ENV];
    if (configFile === undefined || configFile === '') {
      throw mgError('MG_USAGE', `say which configuration to run: --config PATH, or ${CONFIG_ENV}=PATH in the environment (see deploy/examples/meshgate.yaml)`);
    }
    // JSON lines on stdout, as container platforms collect them; nothing else is written there.
    const log = jsonLogger((line) => io.out(line));
    // A configuration that does not load is the command's one-line error on stderr, before any log.
    const config = loadConfigFile(configFile, { env: io.env });
    // Before the log line that says it is up: a supervisor that signals as soon as it reads
    // the line must find the handlers in place, not the default action (exit without flushing
    // the audit). A SIGTERM during the start stops meshgate once it has started.
    const stopped = stopSignals(log);
    let running: RunningMeshgate | null = null;
    // SIGHUP: the service classes' limits as the file says now, then the policy directory; a
    // file that does not load changes nothing (the log says why, and the policy's refusal is
    // an audit event). Limits first: a policy naming a new class needs its limits in place.
    const reload = () => {
      if (running === null) {
        log.warn('SIGHUP during start: nothing to reload yet; meshgate starts with the files as they were read');
        return;
      }
      try {
        log.info(running.reloadLimits(loadConfigFile(configFile, { env: io.env })), { config: configFile });
      } catch (error) {
        log.error(`SIGHUP: kept the limits in force: ${(error as Error).message}`, { config: configFile });
      }
      void running.reloadPolicy('signal');
    };
    process.on('SIGHUP', reload);
    try {
      running = await startMeshgate(config, log, io.env, { waitForUpstreamMs });
    } catch (error) {
      process.off('SIGHUP', reload);
      stopped.remove();
      throw error;
    }
    const signal = await stopped.first;
    process.off('SIGHUP', reload);
    // A second signal cuts the grace period short: an operator at a terminal, or a kubelet past its own deadline.
    const report = await running.shutdown({ cutShort: stopped.second });
    stopped.remove();
    log.info('meshgate stopped', { signal, ...report });
    return 0;
  },
};

/** The first SIGTERM/SIGINT starts the drain; a second one ends it at once. */
function stopSignals(log: Logger): { first: Promise<NodeJS.Signals>; second: Promise<void>; remove(): void } {
  let resolveFirst!: (signal: NodeJS.Signals) => void;
  let resolveSecond!: () => void;
  const first = new Promise<NodeJS.Signals>((resolve) => (resolveFirst = resolve));
  const second = new Promise<void>((resolve) => (resolveSecond = resolve));
  let seen = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    seen++;
    if (seen === 1) resolveFirst(signal);
    else {
      log.warn(`${signal} again: ending open sessions now`);
      resolveSecond();
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    first,
    second,
    remove() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
