/**
 * The composition root: a validated config → the stages every engine shares → each engine
 * the config turns on (engines/index.ts) → the signer endpoint and admin API where
 * configured → one running handle. No protocol knowledge here. Everything that can be wrong
 * is found before the first client is accepted, and a failed start closes what it opened.
 */
import type { AddressInfo } from 'node:net';
import { startAdminApi, type AdminApi, type AdminApiOptions } from './admin/api.ts';
import { adminAccountOf } from './admin/issue.ts';
import { credentialReports } from './admin/trail.ts';
import { AuditRecorder, openJsonlAuditSink, type AuditSink } from './audit/index.ts';
import type { AuditExport } from './audit-pg/index.ts';
import { openSealFor, startAuditExportFor } from './audit-seal.ts';
import type { MeshgateConfig } from './config/schema.ts';
import { googleUpstreamAuth, sharedMariadbCredentials, type CredentialRuntime, type MariadbCredentials } from './credentials/index.ts';
import { ENGINES, startEngines, type Clock, type Endpoint, type EngineDeps, type RunningHandles } from './engines/index.ts';
import {
  parseDuration,
  createIdentityResolver,
  createTokenVerifier,
  watchTlsMaterial,
  type TlsMaterial,
  type TokenVerifier,
} from './identity/index.ts';
import type { Logger } from './log.ts';
import { SwappablePolicy, type LoadedPolicy, type PolicySource } from './policy/index.ts';
import type { ReloadResult, ReloadTrigger } from './policy-reload/index.ts';
import { policyReloader, type PolicyReloads } from './policy-reloads.ts';
import { startPolicy } from './policy-start.ts';
import { tracingFor, type Tracing } from './telemetry/index.ts';
import { observabilityFor, probeRoutes } from './telemetry/metrics/index.ts';
import { throttlingFor, tokenBuckets, type Throttle } from './throttle/index.ts';
import { openMariadbClientTls } from './transport/mariadb-client-tls.ts';
import { startSigner } from './signer-start.ts';
import { upstreamWait, type UpstreamCheck, type UpstreamWait } from './upstream-checks.ts';
import { clusteredMetrics, type WorkerLink } from './workers/worker.ts';

type Handles = RunningHandles<typeof ENGINES>;
type RunningMysql = NonNullable<Handles['mysql']>;
type RunningFirestore = NonNullable<Handles['firestore']>;

export interface RunningMeshgate {
  /** The engines that run, by name: `engines.mysql`, `engines.firestore`. */
  readonly engines: Handles;
  /** Where each engine listens, in start order. */
  readonly endpoints: readonly (Endpoint & { readonly engine: string })[];
  readonly audit: AuditSink;
  /** The export to PostgreSQL (audit.export.postgres); null when not configured. */
  readonly auditExport: AuditExport | null;
  /** Dynamic credentials, when configured (upstream.credentials). */
  readonly credentials: CredentialRuntime | null;
  /** The SVID signing endpoint's port, when `signer` is configured. */
  readonly signerPort: number | null;
  /** The admin API's port, when `admin` and dynamic credentials are configured. */
  readonly adminPort: number | null;
  /** The plain-HTTP metrics listener's port (/metrics, /healthz, /readyz), when `metrics.listen` is set. */
  readonly metricsPort: number | null;
  // Shorthands for the engines' handles, null when that engine is not configured.
  readonly address: AddressInfo | null;
  readonly listener: RunningMysql['listener'] | null;
  readonly pool: RunningMysql['pool'] | null;
  readonly firestorePort: number | null;
  /** The emulator meshgate launched as Firestore upstream (firestore.upstream.launchEmulator). */
  readonly firestoreEmulator: Pick<NonNullable<RunningFirestore['emulator']>, 'kind' | 'host' | 'port' | 'description'> | null;
  /**
   * Applies what a new configuration may change while meshgate runs (SIGHUP): the service
   * classes' limits. Throws MG_CONFIG_INVALID, changing nothing, when the new limits cannot apply.
   */
  reloadLimits(next: MeshgateConfig): string;
  /** Loads the policy directory again and puts it in force if it is valid and changed (SIGHUP, tests). */
  reloadPolicy(trigger?: ReloadTrigger): Promise<ReloadResult>;
  /** The policy in force. */
  readonly policy: PolicySource & { current(): LoadedPolicy };
  /**
   * SIGTERM: /readyz false at once, no new connection or call; open ones go on until they end
   * or `graceMs` (shutdown.gracePeriod) passes; then close(). Says how it went.
   */
  shutdown(options?: ShutdownOptions): Promise<ShutdownReport>;
  /**
   * Ends what is open now (a client that waits for nothing hears MG_SHUTTING_DOWN), drops this
   * replica's session leases, flushes and closes the audit, and closes every listener.
   */
  close(): Promise<void>;
}

export interface ShutdownOptions {
  /** Default shutdown.gracePeriod. */
  readonly graceMs?: number;
  /** Ends the grace period early when it settles (a second signal). */
  readonly cutShort?: Promise<unknown>;
}

export interface ShutdownReport {
  /** How long the open sessions and calls took to end by themselves, or the whole grace period. */
  readonly drainedMs: number;
  /** Sessions and calls still open when the grace period ended, by engine: ended by meshgate. */
  readonly endedByShutdown: Readonly<Record<string, number>>;
}

/** Undoes, last first, what startMeshgate set up: on a failed start and on close. */
class Teardown {
  private readonly steps: (() => unknown)[] = [];
  add(step: () => unknown): void {
    this.steps.push(step);
  }
  private running: Promise<void> | null = null;
  /** Once: a second caller (close during a shutdown) waits for the same teardown to finish. */
  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.splice(0).reverse()) await step();
    })();
    return this.running;
  }
}

export interface StartOptions {
  /** How long to wait for upstreams that do not answer yet (`--wait-for-upstream`); 0: fail at once. */
  readonly waitForUpstreamMs?: number;
  /** Under `serve --workers`: this worker's link to the primary and the other workers. */
  readonly workers?: WorkerLink | null;
}

export async function startMeshgate(config: MeshgateConfig, log: Logger, env: NodeJS.ProcessEnv = process.env, options: StartOptions = {}): Promise<RunningMeshgate> {
  const teardown = new Teardown();
  try {
    return await assemble(config, log, env, teardown, options);
  } catch (error) {
    await teardown.run();
    throw error;
  }
}

async function assemble(config: MeshgateConfig, log: Logger, env: NodeJS.ProcessEnv, teardown: Teardown, options: StartOptions): Promise<RunningMeshgate> {
  const clock: Clock = { now: () => Date.now() };
  // One wait for the whole start, counted from now, whichever engine's upstream is late.
  const started = upstreamWait({ log, waitMs: options.waitForUpstreamMs ?? 0, now: clock.now });
  // The checks each engine runs at start are what /readyz runs again when no login has lately.
  const upstreamChecks: UpstreamCheck[] = [];
  const upstreams: UpstreamWait = {
    check(checks) {
      upstreamChecks.push(...checks);
      return started.check(checks);
    },
  };
  // The directory, or the commit at the git ref; later commits go through the reloader below.
  const policyStart = await startPolicy(config, log, env);
  teardown.add(() => policyStart.close());
  const loaded = policyStart.initial;
  const policy = new SwappablePolicy(loaded);
  const tokens = config.tokens === undefined ? undefined : await createTokenVerifier(config.tokens);
  const verifyToken = tokens === undefined ? undefined : (token: string) => tokens.verify(token);
  const identity = createIdentityResolver({ trustDomains: config.trust.trustDomains, verifyToken });
  const workers = options.workers ?? null;
  const tls = config.tls === undefined ? null : await watchTls(config.tls, config.trust.bundles, log, workers?.ticketKeys ?? null);
  if (tls !== null) teardown.add(() => tls.close());
  // Checkpoints, anchor and rotation (audit.signingKey, anchor, rotate); closed after the sink, with a last checkpoint.
  const seal = await openSealFor(config, log, env);
  if (seal !== null) teardown.add(() => seal.close());
  // The export reads what the sink wrote; closed after the sink, so it sends the last lines too.
  const auditExport = startAuditExportFor(config, log, env);
  if (auditExport !== null) teardown.add(() => auditExport.close());
  const audit = await openJsonlAuditSink(config.audit.file, {
    durability: config.audit.durability,
    ...(seal === null ? {} : { afterBatch: seal.afterBatch }),
    highWaterEvents: config.audit.highWaterEvents,
    maxWaitMs: config.audit.maxWaitMs,
    onUnavailable: (error) => log.error('audit unavailable: new operations are refused with MG_AUDIT_UNAVAILABLE until it records again', { file: config.audit.file, error: error.message }),
    onAvailable: (outage) => log.info('audit records again; new operations are accepted', { file: config.audit.file, ...outage }),
    onError: (error) => log.error('audit event problem', { file: config.audit.file, error: error.message }),
    onTornTail: (torn) => log.warn('the audit file ended in a partial line (a crash during a write); it was set aside and a recovered event records it', { file: config.audit.file, ...torn }),
  });
  // Closed after every engine, so the events of sessions ended by shutdown are written.
  teardown.add(() => audit.close());
  const recorder = new AuditRecorder(audit);
  recorder.policyChange({ action: 'load', trigger: 'start', policyVersion: loaded.version, previousVersion: null, rules: loaded.ruleCount, source: policyStart.source, error: null });
  // Listening before the engines start, closed after they stop: every event becomes a span.
  const tracing = tracingFor(config, log, env);
  if (tracing !== null) teardown.add(() => tracing.close());
  const throttling = await throttlingFor(config, { log, env, policyClasses: policy.current().serviceClasses, replicaId: config.state.replicaId });
  teardown.add(() => throttling.close());
  const { throttle, upstreamBudget, firestoreStreams } = throttling;
  // Counting before the engines start (and after they stop); the pool and leases are read when scraped.
  let pool: RunningMysql['pool'] | null = null;
  let mariadbRef: MariadbCredentials | null = null;
  const { readiness, metrics } = await observabilityFor(config, {
    log,
    audit,
    tls,
    policy: { version: () => policy.current().version, rules: () => policy.current().ruleCount },
    upstreamChecks: () => upstreamChecks,
    pool: () => pool,
    leases: () => mariadbRef?.opened()?.leases ?? null,
    throttle: () => throttling.classes(),
    sharedRates: () => throttling.shared(),
    ...(workers === null ? {} : { exposition: (local) => clusteredMetrics(local, workers) }),
  });
  if (metrics !== null) teardown.add(() => metrics.close());
  // One copy for sessions and the lease manager, so a renewed certificate reaches both at once.
  const mariadbTls = config.upstream?.tls === undefined ? null : await openMariadbClientTls(config.upstream.tls, log);
  if (mariadbTls !== null) teardown.add(() => mariadbTls.close());
  // Refusals counted rather than written one by one are summed up after the engines stop.
  teardown.add(() => recorder.flushRefusals());
  const mariadb = sharedMariadbCredentials(config, { log, env, tls: mariadbTls, report: credentialReports(recorder, config.upstream?.credentials?.admin.user ?? null) });
  // After the engines that use its leases; it drops this replica's session accounts.
  if (mariadb !== null) teardown.add(() => mariadb.close());
  mariadbRef = mariadb;
  const deps: EngineDeps = {
    log,
    identity,
    policy,
    throttle,
    upstreamBudget,
    firestoreStreams,
    credentials: { mariadb, mariadbTls, google: googleUpstreamAuth() },
    audit: recorder,
    tls,
    clock,
    upstreams,
    env,
  };

  const engines = await startEngines(config, deps, ENGINES);
  teardown.add(() => engines.close());
  pool = engines.byName.mysql?.pool ?? null;
  // Every engine's start check just passed: the upstreams answered a moment ago.
  readiness.upstreamReached();
  const signer = config.signer === undefined ? null : await startSigner(config, tokens, log);
  if (signer !== null) teardown.add(() => signer.close());
  const reloader = policyReloader(config, { policy, started: policyStart, throttling, audit: recorder, log, mysql: engines.byName.mysql ?? null });
  teardown.add(() => reloader.close());
  // A reload through the admin API reached this worker only: the others load the same policy.
  workers?.onReloadPolicy((by) => void reloader.reload({ trigger: 'admin', identity: by }));
  const adminReloads = {
    reload: (request: Parameters<PolicyReloads['reload']>[0]) => {
      workers?.policyReloaded(request.identity ?? null);
      return reloader.reload(request);
    },
  };
  const probes = probeRoutes(metrics?.registry ?? null, readiness);
  const adminApi = await startAdmin(config, { tls, mariadb, policy, reloader: adminReloads, verifyToken, audit: recorder, log, tracing, throttle, probes: { ready: probes['/readyz']!, ...(metrics === null ? {} : { metrics: probes['/metrics']! }) } });
  if (adminApi !== null) teardown.add(() => adminApi.close());

  const { mysql, firestore } = engines.byName;
  readiness.serving();
  if (tracing !== null && firestore?.emulator != null) tracing.setFirestoreServer({ address: firestore.emulator.host, port: firestore.emulator.port });
  const endpoints = engines.all.flatMap((engine) => engine.endpoints.map((endpoint) => ({ ...endpoint, engine: engine.name })));
  // The MySQL port first (registry order): scripts that wait for this line read the first address.
  // A worker says it serves; its primary says `listening on` once every worker does.
  const where = endpoints.map((e) => `${e.host}:${e.port} (${e.engine})`).join(', ');
  const startFields = {
    engines: engines.all.map((engine) => engine.name),
    ...Object.assign({}, ...engines.all.map((engine) => engine.logFields)),
    policyRules: policy.current().ruleCount,
    audit: config.audit.file,
    auditDurability: config.audit.durability,
    auditExport: auditExport === null ? null : { table: auditExport.status().table, replica: auditExport.status().replica },
    tracing: config.tracing === undefined ? null : { endpoint: config.tracing.otlp.endpoint, ratio: config.tracing.sampling.ratio },
    metrics: config.metrics === undefined ? null : (config.metrics.listen ?? 'admin port only'),
    // The port bound, for probes and scrapers when the config said port 0.
    metricsPort: metrics?.port ?? null,
    adminPort: adminApi?.port ?? null,
    signer: signer === null ? null : `${config.signer!.host}:${signer.port}`,
  };
  if (workers === null) log.info(`meshgate: listening on ${where}`, startFields);
  else {
    log.info(`meshgate worker ${workers.index} of ${workers.count}: serving ${where}`, startFields);
    workers.up(endpoints.map(({ engine, host, port }) => ({ engine, host, port })), startFields);
  }
  return {
    engines: engines.byName,
    endpoints,
    audit,
    auditExport,
    credentials: mariadb?.opened() ?? null,
    signerPort: signer?.port ?? null,
    adminPort: adminApi?.port ?? null,
    metricsPort: metrics?.port ?? null,
    address: mysql?.address ?? null,
    listener: mysql?.listener ?? null,
    pool: mysql?.pool ?? null,
    firestorePort: firestore?.port ?? null,
    firestoreEmulator: firestore?.emulator ?? null,
    reloadLimits: (next) => throttling.reload(next),
    reloadPolicy: (trigger = 'signal') => reloader.reload({ trigger }),
    policy,
    shutdown: async ({ graceMs = parseDuration(config.shutdown.gracePeriod) * 1000, cutShort } = {}) => {
      readiness.draining();
      const began = performance.now();
      log.info('shutting down: no new connections; open sessions and calls may finish', { open: engines.open(), gracePeriodMs: graceMs });
      let timer: NodeJS.Timeout | undefined;
      const drained = await Promise.race([
        engines.drain().then(() => true),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
        ...(cutShort === undefined ? [] : [cutShort.then(() => false as const)]),
      ]);
      clearTimeout(timer);
      const endedByShutdown = drained ? {} : Object.fromEntries(Object.entries(engines.open()).filter(([, open]) => open > 0));
      if (!drained) log.warn('the grace period is over: meshgate ends what is still open with MG_SHUTTING_DOWN', { open: endedByShutdown, gracePeriodMs: graceMs });
      await teardown.run();
      return { drainedMs: Math.round(performance.now() - began), endedByShutdown };
    },
    close: () => teardown.run(),
  };
}

/**
 * Certificate, key and trust bundles reload when their files change (CA rotation, an agent
 * or Istio renewing meshgate's SVID); open sessions keep the context they began with.
 */
function watchTls(certificate: NonNullable<MeshgateConfig['tls']>, bundles: readonly string[], log: Logger, ticketKeys: Buffer | null): Promise<TlsMaterial> {
  return watchTlsMaterial({
    certFile: certificate.cert,
    keyFile: certificate.key,
    bundleFiles: bundles,
    contextOptions: {
      minVersion: 'TLSv1.2',
      // Without a session id context OpenSSL aborts resumption of client-authenticated
      // sessions with an internal_error alert; drivers such as mysql2 do resume.
      sessionIdContext: 'meshgate-mysql',
      // Under `serve --workers`, one set of keys: a ticket from one worker resumes on another.
      ...(ticketKeys === null ? {} : { ticketKeys }),
    },
    log,
    onError: (error) => log.error('TLS files changed but do not load; still serving the previous ones', { error: error.message }),
    onChange: (change) => log.info('TLS material reloaded', { ...change.certificate, trustedRoots: change.bundleCertificates }),
  });
}

interface AdminDeps {
  readonly reloader: Pick<PolicyReloads, 'reload'>;
  readonly tls: TlsMaterial | null;
  readonly mariadb: MariadbCredentials | null;
  readonly policy: PolicySource;
  readonly verifyToken: ((token: string) => ReturnType<TokenVerifier['verify']>) | undefined;
  readonly audit: AuditRecorder;
  readonly log: Logger;
  readonly tracing: Tracing | null;
  readonly probes: NonNullable<AdminApiOptions['probes']>;
  readonly throttle: Throttle;
}

/** The admin API (credentials for CI, lease administration) serves dynamic credentials only. */
async function startAdmin(config: MeshgateConfig, deps: AdminDeps): Promise<AdminApi | null> {
  if (config.admin === undefined) return null;
  const settings = config.upstream?.credentials;
  if (deps.mariadb === null || config.upstream === undefined || settings === undefined) {
    deps.log.warn('admin is configured but upstream.credentials is not; the admin API serves dynamic credentials only and stays off');
    return null;
  }
  if (deps.tls === null) throw new TypeError("the admin API needs meshgate's certificate; the config schema requires one with listener");
  const credentials = await deps.mariadb.open();
  return startAdminApi({
    host: config.admin.host,
    port: config.admin.port,
    tls: deps.tls,
    trustDomains: config.trust.trustDomains,
    admins: config.admin.principals,
    leases: credentials.leases,
    policy: () => deps.policy.current(),
    ...(deps.verifyToken === undefined ? {} : { verifyToken: deps.verifyToken }),
    upstream: { host: config.upstream.host, port: config.upstream.port },
    rotateAdmin: () => credentials.rotateAdmin(),
    adminAccount: adminAccountOf(config),
    issueRate: tokenBuckets({ perMinute: settings.issuedPerMinute }),
    throttle: deps.throttle,
    audit: deps.audit,
    log: deps.log,
    ...(deps.tracing === null ? {} : { recentSpans: (traceId: string) => deps.tracing!.recentSpans(traceId) }),
    probes: deps.probes,
    reloadPolicy: (by) => deps.reloader.reload({ trigger: 'admin', identity: by }),
  });
}


