/**
 * Readiness always, metrics as the configuration asks for them: the composition root hands
 * over where each fact lives and gets /readyz's judge and, with a `metrics` section, the
 * running metrics back.
 */
import { X509Certificate } from 'node:crypto';
import type { MeshgateConfig } from '../../config/schema.ts';
import { parseDuration, type TlsMaterial } from '../../identity/index.ts';
import type { Logger } from '../../log.ts';
import type { UpstreamCheck } from '../../upstream-checks.ts';
import { MESHGATE_VERSION } from '../../version.ts';
import type { AuditSource, LeaseSource, PoolSource } from './gauges.ts';
import type { MetricsRegistry } from './registry.ts';
import { startMetrics, type Metrics } from './start.ts';
import type { SharedRatesSource, ThrottleSource } from './throttle-gauges.ts';
import { Readiness } from './readiness.ts';

export interface ObservedDeps {
  readonly log: Logger;
  /** The audit sink (queue, back-pressure) and its refusal while it cannot record. */
  readonly audit: AuditSource & { readonly refusal?: { readonly code: string; readonly message: string } | null };
  readonly tls: TlsMaterial | null;
  readonly policy: { version(): string; rules(): number };
  /** The checks engines ran against their upstreams at start (filled as they start). */
  readonly upstreamChecks: () => readonly UpstreamCheck[];
  /** Known once the engines and credentials have started. */
  readonly pool: () => PoolSource | null;
  readonly leases: () => LeaseSource | null;
  /** The service classes' counts; null without a throttle section. */
  readonly throttle: ThrottleSource;
  /** Rates shared through Redis: shared or fallen back; null when not configured. */
  readonly sharedRates: SharedRatesSource;
  /** What a scrape renders from this process's registry (serve --workers: every worker's); default: the registry. */
  readonly exposition?: (local: MetricsRegistry) => MetricsRegistry;
}

export async function observabilityFor(config: MeshgateConfig, deps: ObservedDeps): Promise<{ readonly readiness: Readiness; readonly metrics: Metrics | null }> {
  const readiness = new Readiness({
    policyLoaded: () => deps.policy.rules() > 0,
    auditRefusal: () => deps.audit.refusal ?? null,
    ...(deps.tls === null ? {} : { trustProblem: trustProblemOf(deps.tls) }),
    upstreamChecks: deps.upstreamChecks,
    upstreamFreshMs: parseDuration(config.metrics?.upstreamCheckInterval ?? '15s') * 1000,
  });
  if (config.metrics === undefined) return { readiness, metrics: null };
  const tls = deps.tls;
  const metrics = await startMetrics(
    config.metrics,
    {
      version: MESHGATE_VERSION,
      audit: deps.audit,
      pool: deps.pool,
      leases: deps.leases,
      throttle: deps.throttle,
      sharedRates: deps.sharedRates,
      ...(tls === null ? {} : { certificates: { certificatePem: () => certificatePem(tls), bundlePem: () => tls.bundlePem() } }),
      policy: () => ({ version: deps.policy.version(), rules: deps.policy.rules() }),
    },
    readiness,
    deps.log,
    deps.exposition,
  );
  return { readiness, metrics };
}

/**
 * A replica whose certificate has expired, or that trusts no root, refuses every TLS client:
 * it must not get traffic. Parsed once per certificate, not per probe.
 */
function trustProblemOf(tls: TlsMaterial): () => string | null {
  let parsed: { pem: unknown; bundle: Buffer; notAfter: number; roots: number } | null = null;
  return () => {
    const pem = certificatePem(tls);
    const bundle = tls.bundlePem();
    if (pem === null) return null;
    if (parsed === null || parsed.pem !== pem || parsed.bundle !== bundle) {
      const roots = bundle.toString('latin1').split('-----BEGIN CERTIFICATE-----').length - 1;
      parsed = { pem, bundle, notAfter: Date.parse(new X509Certificate(pem).validTo), roots };
    }
    if (parsed.roots === 0) return 'the trust bundles hold no certificate: no client certificate can be verified; check trust.bundles';
    if (parsed.notAfter <= Date.now()) return `meshgate's certificate expired at ${new Date(parsed.notAfter).toISOString()}; renew it (Istio, meshgate agent, or meshgate ca issue-server): meshgate reloads it from its files`;
    return null;
  };
}

/** meshgate's certificate as its TLS context holds it (chain first). */
function certificatePem(tls: TlsMaterial): string | Buffer | null {
  const cert = tls.contextOptions().cert;
  return typeof cert === 'string' || Buffer.isBuffer(cert) ? cert : null;
}
