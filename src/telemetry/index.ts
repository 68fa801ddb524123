/**
 * Telemetry fed by the audit's diagnostics channels: OpenTelemetry traces (tracing.ts) and
 * Prometheus metrics with /healthz and /readyz (metrics/, entered through metrics/index.ts).
 * The engines never import this folder; they report facts, and this listens when configured.
 */
export { tracingFor } from './from-config.ts';
export { startTracing, type Tracing, type TracingOptions } from './tracing.ts';
export { tracesUrl } from './otlp-export.ts';
export type { SpanSummary } from './recent-spans.ts';
