/**
 * `meshgate probe`: a synthetic request through meshgate and its upstreams under a fresh
 * trace id, then a check that every record of it — MariaDB's view of the statement (the
 * tag), the audit event, the span and the metrics — names the same identity and trace id.
 * Each link is checked where the probe is told where to look; a link it cannot check is
 * reported as skipped, never as passed.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { newTraceId } from '../audit/index.ts';
import { mgError } from '../errors/index.ts';
import { probeAudit, type AuditFileSource } from './audit.ts';
import { probeFirestore, type FirestoreProbeTarget } from './firestore.ts';
import { probeMetrics } from './metrics.ts';
import { probeMysql, type MysqlProbeTarget } from './mysql.ts';
import { unchecked, type LinkResult, type ProbeReport } from './report.ts';
import { probeSpan } from './spans.ts';

export { formatReport, passed, type LinkResult, type ProbeReport } from './report.ts';
export { PROBE_MARK } from './mysql.ts';

export interface ProbeOptions {
  readonly mysql: Omit<MysqlProbeTarget, 'tls' | 'timeoutMs'> | null;
  readonly firestore: Omit<FirestoreProbeTarget, 'tls' | 'timeoutMs'> | null;
  readonly tls: { readonly certFile: string; readonly keyFile: string; readonly caFile: string };
  readonly audit: AuditFileSource | null;
  /** meshgate's admin API (https://HOST:PORT), for the spans; null: not checked. */
  readonly admin: { readonly url: string; readonly serverName?: string } | null;
  /** meshgate's /metrics (http:// plain listener, or https:// admin API); null: not checked. */
  readonly metrics: { readonly url: string; readonly serverName?: string } | null;
  readonly timeoutMs: number;
}

/** The SPIFFE ID in the certificate's URI SAN: who the probe is to meshgate. */
export function spiffeIdOf(certPem: string, file: string): string {
  const san = new X509Certificate(certPem).subjectAltName ?? '';
  const uri = san.split(/,\s*/).find((entry) => entry.startsWith('URI:spiffe://'));
  if (uri === undefined) throw mgError('MG_USAGE', `${file} has no spiffe:// URI SAN: give the probe an X.509-SVID (meshgate ca issue, or the workload's Istio certificate)`);
  return uri.slice('URI:'.length);
}

export async function runProbe(options: ProbeOptions): Promise<ProbeReport> {
  const [cert, key, ca] = await Promise.all([options.tls.certFile, options.tls.keyFile, options.tls.caFile].map((f) => readFile(f, 'utf8')));
  const identity = spiffeIdOf(cert!, options.tls.certFile);
  const traceId = newTraceId();
  const deadline = Date.now() + options.timeoutMs;
  const links: LinkResult[] = [];
  const tls = { cert: cert!, key: key!, ca: ca! };
  if (options.mysql !== null) {
    const mysql = await probeMysql({ ...options.mysql, tls, timeoutMs: options.timeoutMs }, identity, traceId);
    links.push(...mysql);
    links.push(await auditLink('audit', 'statement', mysql[0]?.ok === true, options, identity, traceId, deadline));
    links.push(await spanLink('span', 'mariadb', mysql[0]?.ok === true, options, tls, identity, traceId, deadline));
    links.push(await metricsLink('metrics', 'meshgate_statement_duration_seconds', mysql[0]?.ok === true, options, tls, traceId, deadline));
  }
  if (options.firestore !== null) {
    const firestore = await probeFirestore({ ...options.firestore, tls, timeoutMs: options.timeoutMs }, identity, traceId);
    links.push(firestore);
    links.push(await auditLink('firestore-audit', 'rpc', firestore.ok === true, options, identity, traceId, deadline));
    links.push(await spanLink('firestore-span', 'gcp.firestore', firestore.ok === true, options, tls, identity, traceId, deadline));
    links.push(await metricsLink('firestore-metrics', 'meshgate_rpc_duration_seconds', firestore.ok === true, options, tls, traceId, deadline));
  }
  return { traceId, identity, links };
}

function auditLink(link: 'audit' | 'firestore-audit', type: string, ran: boolean, options: ProbeOptions, identity: string, traceId: string, deadline: number): Promise<LinkResult> {
  if (options.audit === null) return Promise.resolve(unchecked(link, 'no --audit given'));
  if (!ran) return Promise.resolve(unchecked(link, 'the request did not go through'));
  return probeAudit(link, options.audit, type, identity, traceId, deadline);
}

function spanLink(
  link: 'span' | 'firestore-span',
  system: string,
  ran: boolean,
  options: ProbeOptions,
  tls: { readonly cert: string; readonly key: string; readonly ca: string },
  identity: string,
  traceId: string,
  deadline: number,
): Promise<LinkResult> {
  if (options.admin === null) return Promise.resolve(unchecked(link, 'no --admin given'));
  if (!ran) return Promise.resolve(unchecked(link, 'the request did not go through'));
  return probeSpan(link, { ...options.admin, tls }, system, identity, traceId, deadline);
}

function metricsLink(
  link: 'metrics' | 'firestore-metrics',
  family: string,
  ran: boolean,
  options: ProbeOptions,
  tls: { readonly cert: string; readonly key: string; readonly ca: string },
  traceId: string,
  deadline: number,
): Promise<LinkResult> {
  if (options.metrics === null) return Promise.resolve(unchecked(link, 'no --metrics given'));
  if (!ran) return Promise.resolve(unchecked(link, 'the request did not go through'));
  return probeMetrics(link, { ...options.metrics, tls }, family, traceId, deadline);
}
