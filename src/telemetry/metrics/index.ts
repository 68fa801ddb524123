/**
 * Prometheus metrics and the Kubernetes probes, as the `metrics` section asks for them. With
 * metrics configured, the counters subscribe to the audit's channels and /metrics is served on
 * the admin port and, with `metrics.listen`, on a plain-HTTP listener with /healthz and
 * /readyz. Without, nothing subscribes and nothing counts; /healthz and /readyz stay on the
 * admin port.
 */
export { observabilityFor, type ObservedDeps } from './from-config.ts';
export { PROBE_ROUTES, healthRoute, metricsRoute, readyRoute, type ProbeRoute } from './probes.ts';
export { Readiness, type ReadinessReport, type ReadinessSources } from './readiness.ts';
export { createMetricsRegistry, listen, type MetricsRegistry } from './registry.ts';
export type { AuditSource, CertificateSource, GaugeSources, LeaseSource, PoolSource } from './gauges.ts';
export { probeRoutes, startMetrics, type Metrics } from './start.ts';
