/**
 * GET /metrics, /healthz and /readyz, the same wherever they are served: the admin API (mTLS)
 * and the plain-HTTP metrics listener (http.ts). /healthz says the process serves; /readyz
 * whether it should get traffic (readiness.ts), 503 with what is not ready otherwise.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from '../../transport/http/index.ts';
import type { Readiness } from './readiness.ts';
import { acceptsOpenMetrics, OPENMETRICS_CONTENT_TYPE } from './openmetrics.ts';
import type { MetricsRegistry } from './registry.ts';

export const PROBE_ROUTES = { metrics: '/metrics', health: '/healthz', ready: '/readyz' } as const;

export type ProbeRoute = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export function healthRoute(): ProbeRoute {
  return async (_req, res) => sendJson(res, 200, { ok: true });
}

export function readyRoute(readiness: Readiness): ProbeRoute {
  return async (_req, res) => {
    const report = await readiness.report();
    sendJson(res, report.ready ? 200 : 503, report.ready ? { ready: true } : { ready: false, notReady: report.notReady });
  };
}

/** Prometheus text, or OpenMetrics with exemplars where the scraper accepts it. */
export function metricsRoute(metrics: MetricsRegistry): ProbeRoute {
  return async (req, res) => {
    const open = acceptsOpenMetrics(req.headers.accept);
    const text = open ? await metrics.openMetrics() : await metrics.text();
    if (res.headersSent) return;
    res.writeHead(200, { 'content-type': open ? OPENMETRICS_CONTENT_TYPE : metrics.contentType, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : text);
  };
}
