/**
 * The probe's span link: meshgate's admin API lists the spans it ended lately in the probe's
 * trace (GET /v1/traces, a caller's own spans only); one must be the statement's (or call's)
 * span, in that trace, naming the probe's identity. The collector the spans went to is not
 * asked: its API is every vendor's own.
 */
import { request } from 'node:https';
import { broken, holds, unchecked, type LinkName, type LinkResult } from './report.ts';

export interface AdminTarget {
  /** https://HOST:PORT of meshgate's admin API. */
  readonly url: string;
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string };
  readonly serverName?: string;
}

interface Span {
  readonly name: string;
  readonly identity: string | null;
  readonly attributes: Readonly<Record<string, unknown>>;
}

const POLL_MS = 100;

function getJson(target: AdminTarget, path: string, timeoutMs: number): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, target.url);
    const req = request(url, { ...target.tls, ...(target.serverName === undefined ? {} : { servername: target.serverName }), timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
        } catch (error) {
          reject(error);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** `system`: the span's db.system.name (mariadb, gcp.firestore). */
export async function probeSpan(link: LinkName, target: AdminTarget, system: string, identity: string, traceId: string, deadline: number): Promise<LinkResult> {
  for (;;) {
    let answer;
    try {
      answer = await getJson(target, `/v1/traces?traceId=${traceId}`, Math.max(1000, deadline - Date.now()));
    } catch (error) {
      return broken(link, `cannot ask meshgate's admin API at ${target.url} for the spans: ${(error as Error).message}`);
    }
    const error = answer.body['error'] as { code?: string; message?: string } | undefined;
    if (error?.code === 'MG_TRACING_OFF') return unchecked(link, `meshgate at ${target.url} has no tracing section`);
    if (answer.status !== 200) return broken(link, `meshgate's admin API answered ${answer.status} ${error?.code ?? ''}: ${error?.message ?? ''}`);
    const spans = (answer.body['spans'] as Span[] | undefined) ?? [];
    const span = spans.find((s) => s.attributes['db.system.name'] === system);
    if (span !== undefined) {
      if (span.identity !== identity) return broken(link, `the ${system} span of trace ${traceId} names ${String(span.identity)}, not ${identity}`);
      return holds(link, `span '${span.name}' in trace ${traceId} names ${identity}`);
    }
    if (Date.now() >= deadline) {
      return broken(link, `no ${system} span in trace ${traceId} on this replica by the deadline (${spans.length} other span(s)): is the sampling ratio 0, or did another replica serve the probe?`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
