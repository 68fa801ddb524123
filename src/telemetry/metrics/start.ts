/** Starts the metrics: counting from now on, and the plain listener where `metrics.listen` says. */
import { listenAddress } from '../../config/metrics-schema.ts';
import type { MetricsConfig } from '../../config/schema.ts';
import type { Logger } from '../../log.ts';
import type { GaugeSources } from './gauges.ts';
import { listenProbes, type ProbeListener } from './http.ts';
import { healthRoute, metricsRoute, PROBE_ROUTES, readyRoute, type ProbeRoute } from './probes.ts';
import type { Readiness } from './readiness.ts';
import { createMetricsRegistry, listen, type MetricsRegistry } from './registry.ts';

export interface Metrics {
  readonly registry: MetricsRegistry;
  /** The plain listener's port, when `metrics.listen` is set. */
  readonly port: number | null;
  close(): Promise<void>;
}

/**
 * Counts from now on; listens when `metrics.listen` says where. `exposition`: what a scrape renders, from this process's registry (under `serve --workers`,
 * every worker's metrics); default: this registry.
 */
export async function startMetrics(config: MetricsConfig, sources: GaugeSources, readiness: Readiness, log: Logger, exposition: (local: MetricsRegistry) => MetricsRegistry = (local) => local): Promise<Metrics> {
  const local = createMetricsRegistry(sources);
  const registry = exposition(local);
  local.events.onUpstreamReached = () => readiness.upstreamReached();
  let lastReport = 0;
  const unsubscribe = listen(local, (error) => {
    const at = Date.now();
    if (at - lastReport < 60_000) return;
    lastReport = at;
    log.error('metrics could not count an event; the operation itself is unaffected (said at most once a minute)', { error: String(error) });
  });
  let listener: ProbeListener | null = null;
  if (config.listen !== undefined) {
    const { host, port } = listenAddress(config.listen);
    try {
      listener = await listenProbes(host, port, probeRoutes(registry, readiness), (error, path) => log.warn('metrics listener request failed', { route: path, error: String(error) }));
    } catch (error) {
      unsubscribe();
      throw error;
    }
    log.info('metrics listening', { host, port: listener.port, routes: Object.values(PROBE_ROUTES) });
  }
  return {
    registry,
    port: listener?.port ?? null,
    async close() {
      unsubscribe();
      await listener?.close();
    },
  };
}

export function probeRoutes(registry: MetricsRegistry | null, readiness: Readiness): Record<string, ProbeRoute> {
  return {
    ...(registry === null ? {} : { [PROBE_ROUTES.metrics]: metricsRoute(registry) }),
    [PROBE_ROUTES.health]: healthRoute(),
    [PROBE_ROUTES.ready]: readyRoute(readiness),
  };
}
