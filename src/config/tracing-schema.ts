/**
 * The `tracing` section: OpenTelemetry spans for every statement, Firestore call and login,
 * exported over OTLP/HTTP to a collector (src/telemetry/). Absent: tracing is off, no SDK is
 * started and nothing listens to the audit's channels.
 *
 * Built from schema.ts's own secret reference and duration, which it passes in (this file
 * cannot import them: schema.ts imports this one).
 */
import { z } from 'zod';

/** What a span's db.query.text holds: the text with literals as `?`, the text as audited, or nothing. */
export const QUERY_TEXT_MODES = ['sanitized', 'full', 'none'] as const;

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;

export const TRACING_TEXT = "OpenTelemetry traces: { otlp: { endpoint: http://otel-collector.observability:4318 } } (see the README's Observability)";

export function tracingSection<Secret extends z.ZodType, Duration extends z.ZodType<string>>(secretRef: Secret, duration: (fallback: string) => Duration) {
  const endpoint = z
    .string()
    .url({ message: 'an http:// or https:// URL, e.g. http://otel-collector.observability:4318', abort: true })
    .refine((url) => /^https?:\/\//i.test(url), 'an http:// or https:// URL: meshgate exports OTLP over HTTP (protobuf), not gRPC')
    .describe("the collector's OTLP/HTTP address, e.g. http://otel-collector.observability:4318 (/v1/traces is added when the URL has no path)");
  const headerValue = z.union([z.string().regex(/^[^\r\n]*$/, 'a header value on one line'), secretRef]).meta({
    expected: 'a header value, or { env: VARIABLE } / { file: PATH } for one that is a secret (an API key)',
  });
  return z
    .strictObject({
      otlp: z
        .strictObject({
          endpoint,
          /** Sent with every export, e.g. a tenant (`x-scope-orgid: shop`) or a key ({ env: OTLP_API_KEY }). */
          headers: z.record(z.string().regex(HEADER_NAME, 'an HTTP header name, e.g. x-scope-orgid'), headerValue).default({}),
          /** How long one export may take; spans that do not make it are dropped, never waited for by sessions. */
          timeout: duration('10s'),
        })
        .describe('where spans go: { endpoint: http://otel-collector.observability:4318 }'),
      /** The `service.name` spans are filed under. */
      serviceName: z.string().min(1).max(255).default('meshgate'),
      /**
       * `ratio`: the share of traces meshgate starts itself that are recorded (0 to 1, the
       * same for every statement of a trace). `followCaller`: a caller's traceparent decides
       * for its own statements and calls (its sampled flag), whatever the ratio.
       */
      sampling: z
        .strictObject({
          ratio: z.number().min(0, 'a share from 0 to 1, e.g. 0.1 for one trace in ten').max(1, 'a share from 0 to 1, e.g. 0.1 for one trace in ten').default(1),
          followCaller: z.boolean().default(true),
        })
        .default({ ratio: 1, followCaller: true }),
      /**
       * `sanitized` (default): literals as `?`, comments dropped. `full`: the statement as the
       * audit keeps it (credentials redacted), and MariaDB's error messages. `none`: no text.
       */
      queryText: z.enum(QUERY_TEXT_MODES).default('sanitized'),
    })
    .describe(TRACING_TEXT);
}
