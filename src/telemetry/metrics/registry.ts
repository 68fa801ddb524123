/**
 * meshgate's Prometheus registry: the event counters (events.ts), the gauges read at scrape
 * time (gauges.ts) and Node's own process metrics (prom-client's defaults: CPU, memory, event
 * loop lag, GC), all in one text exposition.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import { register } from './cells.ts';
import { EventMetrics, subscribe } from './events.ts';
import { registerGauges, type GaugeSources } from './gauges.ts';
import { openMetricsText } from './openmetrics.ts';

const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export interface MetricsRegistry {
  readonly registry: Registry;
  readonly events: EventMetrics;
  /** The exposition, in Prometheus text format 0.0.4. */
  text(): Promise<string>;
  readonly contentType: string;
  /** The exposition as OpenMetrics 1.0, with exemplars (trace ids on latency buckets). */
  openMetrics(): Promise<string>;
}

export interface RegistryOptions {
  /** Node's process metrics (default true); unit tests leave them out to compare exact names. */
  readonly processMetrics?: boolean;
}

export function createMetricsRegistry(sources: GaugeSources, options: RegistryOptions = {}): MetricsRegistry {
  const registry = new Registry();
  const events = new EventMetrics();
  for (const family of events.families) register(registry, family);
  registerGauges(registry, sources, events.active);
  if (options.processMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    // Gauges named like counters: Prometheus' linter (promtool check metrics) rejects them.
    for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);
  }
  return { registry, events, text: () => registry.metrics(), contentType: registry.contentType, openMetrics: () => openMetricsText(registry) };
}

/** Subscribes the registry's counters to the audit's channels; returns the unsubscribe. */
export function listen(metrics: MetricsRegistry, onError: (error: unknown) => void): () => void {
  return subscribe(metrics.events, onError);
}
