/**
 * The primary process of `serve --workers N`: it serves no client. It starts N workers that
 * share meshgate's ports (node:cluster hands each accepted connection to one of them in
 * turn), says it is listening once all of them are, starts a worker again when one dies,
 * passes SIGHUP on, drains them all on SIGTERM/SIGINT, and gathers their metrics for a scrape.
 *
 * A start that any worker cannot make is the start of none: the others are stopped and the
 * command exits 1, as a single process would.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.ts';
import { isMeshgateMessage, WORKER_ENV, type ToPrimary, type ToWorker, type WorkerEndpoint } from './messages.ts';
import { mergeWorkerMetrics, renderFamilies, workersFamily, type WorkerMetrics } from './metrics-merge.ts';

/** A scrape waits this long for each worker: a busy one is left out and counted as silent. */
const COLLECT_TIMEOUT_MS = 2_000;
const RESTART_BACKOFF_MS = 1_000;
const RESTART_BACKOFF_MAX_MS = 30_000;
/** A worker up this long has recovered: its next death restarts it at once again. */
const HEALTHY_AFTER_MS = 60_000;

export interface PrimaryOptions {
  readonly count: number;
  readonly log: Logger;
  /** Test seam: how long the first restart waits (default 1 s, doubling to 30 s). */
  readonly restartBackoffMs?: number;
}

interface Slot {
  readonly index: number;
  worker: Worker | null;
  up: boolean;
  startedAt: number;
  crashes: number;
  restartTimer: NodeJS.Timeout | null;
}

export async function runPrimary(options: PrimaryOptions): Promise<number> {
  const { count, log } = options;
  // Structured clone: a gauge's NaN crosses the channel as NaN, not null.
  cluster.setupPrimary({ serialization: 'advanced' });
  const ticketKeys = randomBytes(48).toString('base64');
  const slots: Slot[] = Array.from({ length: count }, (_, i) => ({ index: i + 1, worker: null, up: false, startedAt: 0, crashes: 0, restartTimer: null }));
  let phase = 'starting' as 'starting' | 'serving' | 'stopping';
  let settleStart!: (outcome: { ok: true; endpoints: readonly WorkerEndpoint[]; fields: Record<string, unknown> } | { ok: false; reason: string }) => void;
  const started = new Promise<Parameters<typeof settleStart>[0]>((resolve) => (settleStart = resolve));
  let allExited!: () => void;
  const exited = new Promise<void>((resolve) => (allExited = resolve));
  const exitCodes = new Map<number, number | null>();
  let firstUp: { endpoints: readonly WorkerEndpoint[]; fields: Record<string, unknown> } | null = null;

  const live = () => slots.filter((slot) => slot.worker !== null && slot.up && slot.worker.isConnected());
  const tell = (slot: Slot, message: ToWorker) => {
    if (slot.worker?.isConnected()) slot.worker.send(message);
  };

  const fork = (slot: Slot) => {
    slot.up = false;
    slot.startedAt = Date.now();
    const worker = cluster.fork({ [WORKER_ENV.index]: String(slot.index), [WORKER_ENV.count]: String(count), [WORKER_ENV.ticketKeys]: ticketKeys });
    slot.worker = worker;
    worker.on('message', (message: unknown) => {
      if (isMeshgateMessage<ToPrimary>(message)) onMessage(slot, message);
    });
    worker.on('exit', (code, signal) => onExit(slot, worker, code, signal));
  };

  const onMessage = (slot: Slot, message: ToPrimary) => {
    switch (message.mg) {
      case 'up':
        slot.up = true;
        firstUp ??= { endpoints: message.endpoints, fields: message.fields };
        // A stop said before the worker listened for it may have been lost: say it again.
        if (phase === 'stopping') tell(slot, { mg: 'stop', now: signals > 1 });
        else if (phase === 'serving') log.info(`worker ${slot.index} is serving again`, { worker: slot.index, pid: slot.worker?.process.pid });
        else if (phase === 'starting' && slots.every((s) => s.up)) settleStart({ ok: true, ...firstUp });
        return;
      case 'scrape':
        void gather(message.openMetrics).then((text) => tell(slot, { mg: 'exposition', id: message.id, text }));
        return;
      case 'metrics':
        collecting.get(message.id)?.(slot.index, message);
        return;
      case 'policy-reloaded':
        for (const other of live()) if (other !== slot) tell(other, { mg: 'reload-policy', by: message.by });
        return;
    }
  };

  const onExit = (slot: Slot, worker: Worker, code: number | null, signal: string | null) => {
    if (slot.worker !== worker) return;
    slot.worker = null;
    const wasUp = slot.up;
    slot.up = false;
    if (phase === 'stopping') {
      exitCodes.set(slot.index, code);
      if (slots.every((s) => s.worker === null && s.restartTimer === null)) allExited();
      return;
    }
    if (phase === 'starting' && !wasUp) {
      settleStart({ ok: false, reason: `worker ${slot.index} could not start (exit code ${code ?? signal}); its error is above` });
      return;
    }
    if (Date.now() - slot.startedAt >= HEALTHY_AFTER_MS) slot.crashes = 0;
    const delay = Math.min(RESTART_BACKOFF_MAX_MS, (options.restartBackoffMs ?? RESTART_BACKOFF_MS) * 2 ** slot.crashes);
    slot.crashes++;
    log.error(`worker ${slot.index} ended (${signal ?? `exit code ${code}`}); starting it again in ${delay} ms`, { worker: slot.index, pid: worker.process.pid, code, signal, restartInMs: delay });
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      if (phase !== 'stopping') fork(slot);
      else if (slots.every((s) => s.worker === null && s.restartTimer === null)) allExited();
    }, delay);
  };

  let nextCollect = 1;
  const collecting = new Map<number, (index: number, message: Extract<ToPrimary, { mg: 'metrics' }>) => void>();
  const gather = async (openMetrics: boolean): Promise<string> => {
    const asked = live();
    const id = nextCollect++;
    const parts: WorkerMetrics[] = [];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, COLLECT_TIMEOUT_MS);
      collecting.set(id, (index, message) => {
        parts.push({ index, families: message.families });
        if (parts.length === asked.length) {
          clearTimeout(timer);
          resolve();
        }
      });
      for (const slot of asked) tell(slot, { mg: 'collect', id });
      if (asked.length === 0) resolve();
    });
    collecting.delete(id);
    parts.sort((a, b) => a.index - b.index);
    return renderFamilies([...mergeWorkerMetrics(parts), workersFamily(parts.length, count - parts.length)], openMetrics);
  };

  const stopAll = (now: boolean) => {
    for (const slot of slots) {
      if (slot.restartTimer !== null) {
        clearTimeout(slot.restartTimer);
        slot.restartTimer = null;
      }
      tell(slot, { mg: 'stop', now });
    }
    if (slots.every((s) => s.worker === null)) allExited();
  };

  let signals = 0;
  const onStopSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      log.info(`${signal}: the workers drain`, { signal });
      phase = 'stopping';
      settleStart({ ok: false, reason: `${signal} during start` });
      stopAll(false);
    } else {
      log.warn(`${signal} again: the workers end open sessions now`);
      stopAll(true);
    }
  };
  const onHangup = () => {
    for (const slot of live()) slot.worker!.process.kill('SIGHUP');
  };
  process.on('SIGINT', onStopSignal);
  process.on('SIGTERM', onStopSignal);
  process.on('SIGHUP', onHangup);
  try {
    for (const slot of slots) fork(slot);
    const outcome = await started;
    if (outcome.ok) {
      phase = 'serving';
      const where = outcome.endpoints.map((e) => `${e.host}:${e.port} (${e.engine})`).join(', ');
      log.info(`meshgate: listening on ${where} with ${count} workers`, { ...outcome.fields, workers: slots.map((s) => ({ worker: s.index, pid: s.worker?.process.pid })) });
    } else if (phase !== 'stopping') {
      log.error(`meshgate did not start: ${outcome.reason}`);
      phase = 'stopping';
      stopAll(true);
    }
    await exited;
    const failed = [...exitCodes].filter(([, code]) => code !== 0);
    log.info('meshgate stopped', { workers: Object.fromEntries(exitCodes) });
    // A stop asked for during the start is a clean stop, as it is for a single process.
    return (outcome.ok || signals > 0) && failed.length === 0 ? 0 : 1;
  } finally {
    process.off('SIGINT', onStopSignal);
    process.off('SIGTERM', onStopSignal);
    process.off('SIGHUP', onHangup);
  }
}
