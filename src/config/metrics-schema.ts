/**
 * The `metrics` section: Prometheus metrics (src/telemetry/metrics/). Present: meshgate keeps
 * its counters and serves them at GET /metrics on the admin port and, with `listen`, on a
 * plain-HTTP listener of their own (what a Prometheus inside the pod scrapes), beside
 * /healthz and /readyz. Absent: nothing subscribes to the audit's channels and nothing counts.
 */
import { z } from 'zod';

/** HOST:PORT, the host an IPv4 address, a name, or an IPv6 address in brackets. */
const LISTEN = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5})$/;

export const METRICS_TEXT = 'Prometheus metrics: {} for /metrics on the admin port, { listen: 127.0.0.1:9464 } for a plain-HTTP listener of their own (see the README\'s Observability)';

export function metricsSection<Duration extends z.ZodType<string>>(duration: (fallback: string) => Duration) {
  return z
    .strictObject({
      /** Plain HTTP serving only /metrics, /healthz and /readyz; absent: no such listener. */
      listen: z
        .string()
        .regex(LISTEN, 'HOST:PORT, e.g. 127.0.0.1:9464 (port 0 picks a free one)')
        .refine((value) => Number(LISTEN.exec(value)?.[2]) <= 65535, 'a port from 0 to 65535')
        .optional(),
      /**
       * /readyz counts the upstream reachable when meshgate reached it this recently: a login
       * through it, or meshgate's own check, run at most once per this interval and only while
       * something asks.
       */
      upstreamCheckInterval: duration('15s'),
    })
    .describe(METRICS_TEXT);
}

/** The host and port of `metrics.listen`. */
export function listenAddress(listen: string): { readonly host: string; readonly port: number } {
  const match = LISTEN.exec(listen);
  if (match === null) throw new TypeError(`not HOST:PORT: ${listen}`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}
