/**
 * The probe's metrics link: meshgate's /metrics, scraped as OpenMetrics as Prometheus scrapes
 * it, must count the probe's statement (or call) in its latency histogram, with the probe's
 * trace id as the exemplar of the bucket it fell in. Metrics carry no identity (no
 * per-caller labels, by design); the trace id is what joins them to the audit event and span,
 * which name the identity.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { broken, holds, type LinkName, type LinkResult } from './report.ts';

export interface MetricsTarget {
  /** http://HOST:PORT/metrics (the plain listener) or https://… (the admin API, with the probe's certificate). */
  readonly url: string;
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string };
  readonly serverName?: string;
}

const ACCEPT = 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5';
const POLL_MS = 200;

function scrape(target: MetricsTarget, timeoutMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(target.url);
    const options = { headers: { accept: ACCEPT }, timeout: timeoutMs };
    const answered = (res: import('node:http').IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { ...options, ...target.tls, ...(target.serverName === undefined ? {} : { servername: target.serverName }) }, answered)
        : httpRequest(url, options, answered);
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The bucket lines of `family` whose exemplar names `traceId`: their `le`. */
export function exemplarBuckets(text: string, family: string, traceId: string): string[] {
  const found: string[] = [];
  const prefix = `${family}_bucket{`;
  const mark = `# {trace_id="${traceId}"}`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix) || !line.includes(mark)) continue;
    found.push(/le="([^"]*)"/.exec(line)?.[1] ?? '?');
  }
  return found;
}

/** `family`: meshgate_statement_duration_seconds or meshgate_rpc_duration_seconds. */
export async function probeMetrics(link: LinkName, target: MetricsTarget, family: string, traceId: string, deadline: number): Promise<LinkResult> {
  for (;;) {
    let answer;
    try {
      answer = await scrape(target, Math.max(1000, deadline - Date.now()));
    } catch (error) {
      return broken(link, `cannot scrape meshgate's metrics at ${target.url}: ${(error as Error).message}`);
    }
    if (answer.status !== 200) return broken(link, `meshgate's metrics at ${target.url} answered ${answer.status}: ${answer.text.slice(0, 200)}`);
    const buckets = exemplarBuckets(answer.text, family, traceId);
    if (buckets.length > 0) return holds(link, `${family} counted it, bucket le=${buckets[0]} names trace ${traceId}`);
    if (Date.now() >= deadline) {
      const counted = answer.text.includes(`${family}_bucket{`);
      return broken(
        link,
        counted
          ? `no bucket of ${family} names trace ${traceId}: another replica served the probe, or later traffic in the same bucket replaced its exemplar (probe again)`
          : `${target.url} has no ${family}: is it this meshgate's metrics?`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
