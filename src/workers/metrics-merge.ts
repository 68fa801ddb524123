/**
 * One exposition for all workers: whichever worker a scrape reaches answers with every
 * worker's samples, each labelled `worker="N"`. Nothing is summed here: a counter sums in
 * PromQL (`sum without (worker)`), and a gauge such as the policy version or a certificate's
 * expiry stays true per process instead of becoming N times itself.
 */
import { Registry, type Metric } from 'prom-client';
import { openMetricsText } from '../telemetry/metrics/openmetrics.ts';
import type { MetricFamily, MetricSample } from './messages.ts';

export interface WorkerMetrics {
  readonly index: number;
  readonly families: readonly MetricFamily[];
}

/** Families in the order the first worker to have each lists them; samples worker by worker. */
export function mergeWorkerMetrics(parts: readonly WorkerMetrics[]): MetricFamily[] {
  const merged = new Map<string, { family: MetricFamily; values: MetricSample[] }>();
  for (const part of parts) {
    const worker = String(part.index);
    for (const family of part.families) {
      let entry = merged.get(family.name);
      if (entry === undefined) merged.set(family.name, (entry = { family, values: [] }));
      for (const sample of family.values) entry.values.push({ ...sample, labels: { ...sample.labels, worker } });
    }
  }
  return [...merged.values()].map(({ family, values }) => ({ name: family.name, help: family.help, type: family.type, values }));
}

/** How many workers answered the scrape and how many did not in time: a partial exposition says so. */
export function workersFamily(answered: number, silent: number): MetricFamily {
  return {
    name: 'meshgate_workers',
    help: 'serve --workers: the workers whose metrics are in this exposition (answered) and those that did not answer the scrape in time (silent).',
    type: 'gauge',
    values: [
      { value: answered, labels: { state: 'answered' } },
      { value: silent, labels: { state: 'silent' } },
    ],
  };
}

/** The families rendered as Prometheus text (0.0.4) or OpenMetrics, as a single registry would. */
export async function renderFamilies(families: readonly MetricFamily[], openMetrics: boolean): Promise<string> {
  const registry = new Registry();
  for (const family of families) {
    const frozen = { ...family, values: family.values.map((sample) => ({ ...sample })) };
    // prom-client renders what get() returns; it renames the family for OpenMetrics, so each render gets a copy.
    registry.registerMetric({ name: family.name, help: family.help, type: family.type, get: async () => ({ ...frozen, values: frozen.values.map((s) => ({ ...s })) }) } as unknown as Metric);
  }
  return openMetrics ? openMetricsText(registry) : registry.metrics();
}

/** A registry's families as a worker sends them: with shared labels and exemplars, as the text renderer reads them. */
export async function familiesOf(registry: Registry): Promise<MetricFamily[]> {
  const metrics = registry.getMetricsAsArray() as unknown as { get(): Promise<MetricFamily>; getForPromString?(): Promise<MetricFamily> }[];
  const families = await Promise.all(metrics.map((metric) => metric.getForPromString?.() ?? metric.get()));
  // Only what the renderer reads crosses the channel (prom-client adds `aggregator`).
  return families.map(({ name, help, type, values }) => ({ name, help, type, values }));
}
