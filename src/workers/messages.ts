import type { Identity } from '../identity/index.ts';

/**
 * What the primary and its workers say to each other over the cluster's IPC channel
 * (structured clone: a NaN gauge stays NaN). Every message carries `mg`, so messages of
 * other libraries on the channel (prom-client's own cluster support) are told apart.
 */

/** One metric family as prom-client's `get()` gives it: name, help, type, samples. */
export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly values: readonly MetricSample[];
}

export interface MetricSample {
  readonly value: number;
  readonly labels?: Readonly<Record<string, string | number>>;
  readonly metricName?: string;
  readonly exemplar?: unknown;
  readonly sharedLabels?: Readonly<Record<string, string | number>>;
}

export interface WorkerEndpoint {
  readonly engine: string;
  readonly host: string;
  readonly port: number;
}

export type ToPrimary =
  /** Started: listening on the shared ports. */
  | { readonly mg: 'up'; readonly endpoints: readonly WorkerEndpoint[]; readonly fields: Readonly<Record<string, unknown>> }
  /** A scrape reached this worker: every worker's metrics, rendered. */
  | { readonly mg: 'scrape'; readonly id: number; readonly openMetrics: boolean }
  /** This worker's metrics, for the scrape `id`. */
  | { readonly mg: 'metrics'; readonly id: number; readonly families: readonly MetricFamily[] }
  /** The admin API reloaded the policy here: the other workers should too. */
  | { readonly mg: 'policy-reloaded'; readonly by: Identity | null };

export type ToWorker =
  | { readonly mg: 'collect'; readonly id: number }
  | { readonly mg: 'exposition'; readonly id: number; readonly text: string }
  | { readonly mg: 'reload-policy'; readonly by: Identity | null }
  /** Drain, as SIGTERM does a single process; `now`: end the grace period (a second signal). */
  | { readonly mg: 'stop'; readonly now: boolean };

export function isMeshgateMessage<T extends { mg: string }>(message: unknown): message is T {
  return typeof message === 'object' && message !== null && typeof (message as { mg?: unknown }).mg === 'string';
}

/** The environment a worker starts with: which one it is, of how many, and the TLS ticket keys they share. */
export const WORKER_ENV = { index: 'MESHGATE_WORKER_INDEX', count: 'MESHGATE_WORKERS', ticketKeys: 'MESHGATE_TLS_TICKET_KEYS' } as const;
