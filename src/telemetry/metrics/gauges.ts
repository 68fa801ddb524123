/**
 * What is read at scrape time rather than counted: the upstream pool, leases, the audit
 * queue, certificate expiry, the policy and the build. Each gauge's collect callback asks
 * its source when Prometheus asks, so none of this costs anything between scrapes.
 */
import { X509Certificate } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { LeaseOperationCounts } from '../../credentials/index.ts';
import { pemCertificates } from '../../identity/index.ts';
import type { LeaseRecord } from '../../store/index.ts';
import { registerThrottleMetrics, type SharedRatesSource, type ThrottleSource } from './throttle-gauges.ts';

export interface PoolSource {
  readonly idleCount: number;
  readonly stats: { readonly opened: number; readonly reused: number; readonly returned: number; readonly discarded: number };
}

export interface LeaseSource {
  list(filter: { states: readonly LeaseRecord['state'][] }): Promise<readonly Pick<LeaseRecord, 'state' | 'purpose'>[]>;
  readonly operations: LeaseOperationCounts;
}

export interface AuditSource {
  readonly pending?: number;
  readonly backPressureSeconds?: number;
  readonly refusal?: unknown;
}

/** PEM text or bytes: meshgate's certificate (chain first) and the trust bundle. */
export interface CertificateSource {
  certificatePem(): string | Buffer | null;
  bundlePem(): string | Buffer | null;
}

export interface GaugeSources {
  readonly version: string;
  readonly audit: AuditSource;
  /** The MySQL upstream pool, when the MySQL engine runs. */
  readonly pool?: () => PoolSource | null;
  /** Dynamic credentials' leases, once opened. */
  readonly leases?: () => LeaseSource | null;
  readonly certificates?: CertificateSource;
  readonly policy: () => { readonly version: string; readonly rules: number };
  /** The service classes' counts, when a throttle section is configured. */
  readonly throttle?: ThrottleSource;
  readonly sharedRates?: SharedRatesSource;
}

const LEASE_STATES = ['creating', 'active', 'revoking', 'revoked'] as const;
const LEASE_PURPOSES = ['session', 'issued'] as const;

/** `active`: open sessions per engine (counted from events). */
export function registerGauges(registry: Registry, sources: GaugeSources, active: ReadonlyMap<string, number>): void {
  const registers = [registry];
  registerThrottleMetrics(registry, sources.throttle ?? (() => null), sources.sharedRates);
  new Gauge({
    name: 'meshgate_build_info',
    help: 'Always 1: the meshgate version and the Node.js version it runs on.',
    labelNames: ['version', 'node_version'],
    registers,
    collect() {
      this.set({ version: sources.version, node_version: process.version }, 1);
    },
  });
  new Gauge({
    name: 'meshgate_policy_info',
    help: 'Always 1: the version (a digest of the policy files) of the policy in force.',
    labelNames: ['version'],
    registers,
    collect() {
      this.reset();
      this.set({ version: sources.policy().version }, 1);
    },
  });
  new Gauge({
    name: 'meshgate_policy_rules',
    help: 'Rules in the policy in force.',
    registers,
    collect() {
      this.set(sources.policy().rules);
    },
  });
  new Gauge({
    name: 'meshgate_sessions_active',
    help: 'Sessions open now, by engine.',
    labelNames: ['engine'],
    registers,
    collect() {
      for (const [engine, open] of active) this.set({ engine }, open);
    },
  });
  registerPoolGauges(registry, sources, active);
  registerLeaseGauges(registry, sources);
  registerAuditGauges(registry, sources.audit);
  if (sources.certificates !== undefined) registerCertificateGauge(registry, sources.certificates);
}

function registerPoolGauges(registry: Registry, sources: GaugeSources, active: ReadonlyMap<string, number>): void {
  if (sources.pool === undefined) return;
  const pool = sources.pool;
  new Gauge({
    name: 'meshgate_upstream_connections',
    help: 'MariaDB connections meshgate holds, by state: in_use (by a session), idle (pooled).',
    labelNames: ['engine', 'state'],
    registers: [registry],
    collect() {
      const current = pool();
      if (current === null) return;
      this.set({ engine: 'mysql', state: 'idle' }, current.idleCount);
      this.set({ engine: 'mysql', state: 'in_use' }, active.get('mysql') ?? 0);
    },
  });
  new Counter({
    name: 'meshgate_upstream_pool_events_total',
    help: 'Upstream pool events: opened (a new MariaDB login), reused (an idle connection handed out), returned (kept idle after a session), discarded.',
    labelNames: ['engine', 'event'],
    registers: [registry],
    collect() {
      const current = pool();
      if (current === null) return;
      this.reset();
      for (const event of ['opened', 'reused', 'returned', 'discarded'] as const) this.inc({ engine: 'mysql', event }, current.stats[event]);
    },
  });
}

function registerLeaseGauges(registry: Registry, sources: GaugeSources): void {
  if (sources.leases === undefined) return;
  const leases = sources.leases;
  new Gauge({
    name: 'meshgate_leases',
    help: 'Credential leases in the state store, by state and purpose (session: meshgate\'s own logins; issued: direct credentials).',
    labelNames: ['state', 'purpose'],
    registers: [registry],
    async collect() {
      const current = leases();
      if (current === null) return;
      const records = await current.list({ states: LEASE_STATES });
      for (const state of LEASE_STATES) for (const purpose of LEASE_PURPOSES) this.set({ state, purpose }, 0);
      for (const record of records) this.inc({ state: record.state, purpose: record.purpose });
    },
  });
  new Counter({
    name: 'meshgate_lease_operations_total',
    help: 'Lease operations of this replica: create (session), issue (direct), renew, revoke; by outcome: completed, failed.',
    labelNames: ['operation', 'outcome'],
    registers: [registry],
    collect() {
      const current = leases();
      if (current === null) return;
      this.reset();
      for (const [operation, counts] of Object.entries(current.operations)) {
        this.inc({ operation, outcome: 'completed' }, counts.completed);
        this.inc({ operation, outcome: 'failed' }, counts.failed);
      }
    },
  });
}

function registerAuditGauges(registry: Registry, audit: AuditSource): void {
  new Gauge({
    name: 'meshgate_audit_queue_events',
    help: 'Audit events recorded but not yet written to the audit file.',
    registers: [registry],
    collect() {
      this.set(audit.pending ?? 0);
    },
  });
  new Counter({
    name: 'meshgate_audit_back_pressure_seconds_total',
    help: 'Time sessions were held back because the audit file was behind (its queue past audit.highWaterEvents).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(audit.backPressureSeconds ?? 0);
    },
  });
  new Gauge({
    name: 'meshgate_audit_available',
    help: '1 while the audit records events; 0 during an outage, when new operations are refused with MG_AUDIT_UNAVAILABLE.',
    registers: [registry],
    collect() {
      this.set(audit.refusal == null ? 1 : 0);
    },
  });
}

interface Expiry {
  readonly certificate: 'listener' | 'trust_root';
  readonly subject: string;
  readonly notAfter: number;
}

/** Parsed again only when the PEM changes (a reload), not at every scrape. */
function registerCertificateGauge(registry: Registry, source: CertificateSource): void {
  let seen: [string | Buffer | null, string | Buffer | null] = [null, null];
  let expiries: Expiry[] = [];
  new Gauge({
    name: 'meshgate_certificate_expiry_timestamp_seconds',
    help: 'When a certificate expires (Unix time): meshgate\'s own (certificate="listener") and each root of its trust bundle (certificate="trust_root").',
    labelNames: ['certificate', 'subject'],
    registers: [registry],
    collect() {
      const cert = source.certificatePem();
      const bundle = source.bundlePem();
      if (cert !== seen[0] || bundle !== seen[1]) {
        seen = [cert, bundle];
        expiries = [...expiriesOf(cert, 'listener').slice(0, 1), ...expiriesOf(bundle, 'trust_root')];
        this.reset();
      }
      for (const e of expiries) this.set({ certificate: e.certificate, subject: e.subject }, e.notAfter);
    },
  });
}

function expiriesOf(pem: string | Buffer | null, certificate: Expiry['certificate']): Expiry[] {
  if (pem === null) return [];
  return pemCertificates(pem.toString()).flatMap((block) => {
    try {
      const x509 = new X509Certificate(block);
      // A bundle may carry a leaf by mistake; only CA certificates are roots.
      if (certificate === 'trust_root' && !x509.ca) return [];
      return [{ certificate, subject: subjectOf(x509), notAfter: Math.floor(Date.parse(x509.validTo) / 1000) }];
    } catch {
      return [];
    }
  });
}

/** The CN (or the whole subject, on one line) and a short fingerprint: two roots may share a name. */
function subjectOf(x509: X509Certificate): string {
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(x509.subject)?.[1] ?? x509.subject.replaceAll('\n', ', ');
  return `${cn} (${x509.fingerprint256.replaceAll(':', '').slice(0, 12).toLowerCase()})`;
}
