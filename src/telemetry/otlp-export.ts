/**
 * Where spans go: OTLP/HTTP with protobuf bodies (what every collector and most backends
 * take on :4318), with the configured headers. The exporter also reads the standard
 * OTEL_EXPORTER_OTLP_* variables for what the file leaves unset (a private CA:
 * OTEL_EXPORTER_OTLP_CERTIFICATE). A failing export is said in the log when it starts, at
 * most once a minute while it lasts, and when it ends, with how many spans were lost.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { readSecret } from '../config/load.ts';
import type { TracingConfig } from '../config/schema.ts';
import { parseDuration } from '../identity/index.ts';
import type { Logger } from '../log.ts';

/** The collector's base URL gets the traces path; a URL with a path of its own is used as it is. */
export function tracesUrl(endpoint: string): string {
  const url = new URL(endpoint);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/v1/traces';
  return url.toString();
}

export function otlpExporter(otlp: TracingConfig['otlp'], log: Logger, env: NodeJS.ProcessEnv = process.env): SpanExporter {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(otlp.headers)) {
    headers[name] = typeof value === 'string' ? value : readSecret(value, `tracing.otlp.headers.${name}`, env);
  }
  const url = tracesUrl(otlp.endpoint);
  const exporter = new OTLPTraceExporter({ url, headers, timeoutMillis: parseDuration(otlp.timeout, 'tracing.otlp.timeout') * 1000 });
  return new ReportingExporter(exporter, log, url);
}

class ReportingExporter implements SpanExporter {
  private lost = 0;
  private failingSince: number | null = null;
  private lastReport = 0;

  constructor(
    private readonly inner: SpanExporter,
    private readonly log: Logger,
    private readonly url: string,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) this.succeeded();
      else this.failed(spans.length, result.error);
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }

  private failed(spans: number, error: Error | undefined): void {
    this.lost += spans;
    const at = Date.now();
    if (this.failingSince !== null && at - this.lastReport < 60_000) return;
    this.failingSince ??= at;
    this.lastReport = at;
    const fields = { endpoint: this.url, error: error?.message ?? 'unknown', spansLost: this.lost };
    this.log.warn('spans could not be exported to the OpenTelemetry collector and are dropped; sessions are not held back (said at most once a minute)', fields);
  }

  private succeeded(): void {
    if (this.failingSince === null) return;
    this.log.info('spans are exported again', { endpoint: this.url, spansLost: this.lost, failingForMs: Date.now() - this.failingSince });
    this.failingSince = null;
    this.lost = 0;
  }
}
