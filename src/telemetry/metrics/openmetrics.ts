/**
 * The OpenMetrics exposition, which Prometheus asks for first: the same metrics as the text
 * format, plus exemplars, so a latency bucket names the trace id of a statement that fell in
 * it (the way from a dashboard to the trace, the audit event and MariaDB's tag).
 */
import { Registry, type Metric, type OpenMetricsContentType } from 'prom-client';

export const OPENMETRICS_CONTENT_TYPE = Registry.OPENMETRICS_CONTENT_TYPE;

/** Whether the scraper's Accept header takes OpenMetrics (Prometheus' does unless told otherwise). */
export function acceptsOpenMetrics(accept: string | undefined): boolean {
  return accept !== undefined && accept.includes('application/openmetrics-text');
}

interface Rendered {
  readonly name: string;
  readonly type: string;
  readonly help: string;
  get(): Promise<{ name: string }>;
  getForPromString?(): Promise<{ name: string }>;
}

/** `registry`'s metrics as OpenMetrics text. */
export async function openMetricsText(registry: Registry): Promise<string> {
  const view = new Registry<OpenMetricsContentType>();
  view.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  for (const metric of registry.getMetricsAsArray()) view.registerMetric(standIn(metric as unknown as Rendered));
  return view.metrics();
}

/**
 * prom-client renders a counter as OpenMetrics by renaming the metric object itself (its
 * family name loses `_total`), which would rename it in the text exposition as well: each
 * scrape renders stand-ins that read the real metric.
 */
function standIn(metric: Rendered): Metric {
  const name = metric.type === 'counter' ? metric.name.replace(/_total$/, '') : metric.name;
  const read = async () => ({ ...(await (metric.getForPromString?.() ?? metric.get())), name });
  return { name, help: metric.help, type: metric.type, get: read } as unknown as Metric;
}
