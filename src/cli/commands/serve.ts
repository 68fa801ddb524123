import { availableParallelism } from 'node:os';
import { loadConfigFile } from '../../config/load.ts';
import type { MeshgateConfig } from '../../config/schema.ts';
import { jsonLogger, type Logger } from '../../log.ts';
import { startMeshgate, type RunningMeshgate } from '../../server.ts';
import { optionalString, type CliCommand } from '../command.ts';
import { parseDuration } from '../../identity/index.ts';
import { mgError } from '../../errors/index.ts';
import { SERVE } from '../specs/serve.ts';
import { parseWorkers, workerConfig, workersProblem } from '../../workers/plan.ts';
import { runPrimary } from '../../workers/primary.ts';
import { joinCluster, type WorkerLink } from '../../workers/worker.ts';

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
    const workers = parseWorkers(optionalString(values, 'workers'), availableParallelism());
    // Under --workers, this process may be one of the workers its primary started.
    const link = joinCluster(io.env);
    // JSON lines on stdout, as container platforms collect them; nothing else is written there.
    const log = jsonLogger((line) => io.out(line), link === null ? {} : { worker: link.index });
    // A configuration that does not load is the command's one-line error on stderr, before any log.
    const load = () => {
      const loaded = loadConfigFile(configFile, { env: io.env });
      return link === null ? loaded : workerConfig(loaded, link.index);
    };
    if (link === null && workers > 1) {
      const problem = workersProblem(load(), workers);
      if (problem !== null) throw mgError('MG_USAGE', problem);
      return runPrimary({ count: workers, log });
    }
    try {
      return await serve(load(), log, link, { load, configFile, env: io.env, waitForUpstreamMs });
    } finally {
      // The channel to the primary would keep this worker alive after its last session.
      link?.leave();
    }
  },
};

/** One meshgate process: a single one, or one worker of `serve --workers`. */
async function serve(config: MeshgateConfig, log: Logger, link: WorkerLink | null, options: ServeOptions): Promise<number> {
  // Before the log line that says it is up: a supervisor that signals as soon as it reads
  // the line must find the handlers in place, not the default action (exit without flushing
  // the audit). A SIGTERM during the start stops meshgate once it has started.
  const stopped = stopSignals(log, link);
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
      log.info(running.reloadLimits(options.load()), { config: options.configFile });
    } catch (error) {
      log.error(`SIGHUP: kept the limits in force: ${(error as Error).message}`, { config: options.configFile });
    }
    void running.reloadPolicy('signal');
  };
  process.on('SIGHUP', reload);
  try {
    running = await startMeshgate(config, log, options.env, { waitForUpstreamMs: options.waitForUpstreamMs, workers: link });
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
}

interface ServeOptions {
  /** The configuration file as it is now (SIGHUP). */
  readonly load: () => MeshgateConfig;
  readonly configFile: string;
  readonly env: NodeJS.ProcessEnv;
  readonly waitForUpstreamMs: number;
}

/**
 * The first SIGTERM/SIGINT starts the drain; a second one ends it at once. A worker also
 * stops when its primary says so (the signals went to the primary), or is gone.
 */
function stopSignals(log: Logger, link: WorkerLink | null): { first: Promise<NodeJS.Signals | 'primary'>; second: Promise<void>; remove(): void } {
  let resolveFirst!: (signal: NodeJS.Signals | 'primary') => void;
  let resolveSecond!: () => void;
  const first = new Promise<NodeJS.Signals | 'primary'>((resolve) => (resolveFirst = resolve));
  const second = new Promise<void>((resolve) => (resolveSecond = resolve));
  void link?.stop.first.then(() => resolveFirst('primary'));
  void link?.stop.second.then(() => resolveSecond());
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
