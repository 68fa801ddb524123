/**
 * A worker's side of `serve --workers`: it serves as a replica would, and asks its primary
 * for what only all workers together know (a scrape's full exposition), tells it what the
 * others must do too (a policy reload through the admin API), and stops when it says so.
 */
import cluster from 'node:cluster';
import type { Registry } from 'prom-client';
import type { Identity } from '../identity/index.ts';
import type { MetricsRegistry } from '../telemetry/metrics/registry.ts';
import { isMeshgateMessage, WORKER_ENV, type ToPrimary, type ToWorker, type WorkerEndpoint } from './messages.ts';
import { familiesOf } from './metrics-merge.ts';

/** A scrape waits this long for the primary; the primary waits less for the workers. */
const EXPOSITION_TIMEOUT_MS = 5_000;

export interface WorkerLink {
  /** From 1. */
  readonly index: number;
  readonly count: number;
  /** The TLS session-ticket keys every worker uses, so a client resumes on whichever worker it reaches. */
  readonly ticketKeys: Buffer | null;
  /** Every worker's metrics, rendered (the primary gathers them). */
  exposition(openMetrics: boolean): Promise<string>;
  /** What this worker answers when the primary gathers metrics. */
  serveMetrics(registry: Registry): void;
  /** The admin API reloaded the policy in this worker: the others reload too. */
  policyReloaded(by: Identity | null): void;
  onReloadPolicy(reload: (by: Identity | null) => void): void;
  /** Started and listening. */
  up(endpoints: readonly WorkerEndpoint[], fields: Record<string, unknown>): void;
  /** Done (stopped, or a start that failed): the channel to the primary closes, so the process can exit. */
  leave(): void;
  /** Resolves when the primary says to drain (or is gone); `second` when it says to stop at once. */
  readonly stop: { readonly first: Promise<void>; readonly second: Promise<void> };
}

/** This process's link to its primary, or null when it is not a `serve --workers` worker. */
export function joinCluster(env: NodeJS.ProcessEnv = process.env): WorkerLink | null {
  if (!cluster.isWorker || env[WORKER_ENV.index] === undefined) return null;
  const index = Number(env[WORKER_ENV.index]);
  const count = Number(env[WORKER_ENV.count]);
  const keys = env[WORKER_ENV.ticketKeys];
  // A secret: taken out of the environment, so no process this worker starts (git, the
  // Firestore emulator) inherits it, and no ${env:…} in the config can reach it.
  delete env[WORKER_ENV.ticketKeys];
  const send = (message: ToPrimary) => {
    if (process.connected) process.send!(message);
  };
  let nextId = 1;
  const scrapes = new Map<number, (text: string) => void>();
  let registry: Registry | null = null;
  let reloadPolicy: ((by: Identity | null) => void) | null = null;
  let stopFirst!: () => void;
  let stopSecond!: () => void;
  const first = new Promise<void>((resolve) => (stopFirst = resolve));
  const second = new Promise<void>((resolve) => (stopSecond = resolve));

  process.on('message', (message: unknown) => {
    if (!isMeshgateMessage<ToWorker>(message)) return;
    switch (message.mg) {
      case 'collect':
        if (registry !== null) void familiesOf(registry).then((families) => send({ mg: 'metrics', id: message.id, families }));
        return;
      case 'exposition':
        scrapes.get(message.id)?.(message.text);
        scrapes.delete(message.id);
        return;
      case 'reload-policy':
        reloadPolicy?.(message.by);
        return;
      case 'stop':
        stopFirst();
        if (message.now) stopSecond();
        return;
    }
  });
  // The primary is gone (killed): nobody will say stop, and nobody supervises this worker.
  process.on('disconnect', () => stopFirst());

  return {
    index,
    count,
    ticketKeys: keys === undefined ? null : Buffer.from(keys, 'base64'),
    exposition(openMetrics) {
      const id = nextId++;
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          scrapes.delete(id);
          reject(new Error(`the primary process did not gather the workers' metrics within ${EXPOSITION_TIMEOUT_MS} ms`));
        }, EXPOSITION_TIMEOUT_MS);
        scrapes.set(id, (text) => {
          clearTimeout(timer);
          resolve(text);
        });
        send({ mg: 'scrape', id, openMetrics });
      });
    },
    serveMetrics(served) {
      registry = served;
    },
    policyReloaded(by) {
      send({ mg: 'policy-reloaded', by });
    },
    onReloadPolicy(reload) {
      reloadPolicy = reload;
    },
    up(endpoints, fields) {
      send({ mg: 'up', endpoints, fields });
    },
    leave() {
      if (process.connected) process.disconnect();
    },
    stop: { first, second },
  };
}

/** The worker's registry as a scrape sees it: every worker's metrics, gathered by the primary. */
export function clusteredMetrics(local: MetricsRegistry, link: WorkerLink): MetricsRegistry {
  link.serveMetrics(local.registry);
  return { ...local, text: () => link.exposition(false), openMetrics: () => link.exposition(true) };
}
