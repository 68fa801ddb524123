/**
 * Assembles a running meshgate from a validated config: trust, policy, upstream accounts,
 * audit sink and the MySQL listener. Everything that can be wrong is checked here, before
 * the first client is accepted.
 */
import type { AddressInfo } from 'node:net';
import { startAdminApi } from './admin/api.ts';
import { adminAccountOf } from './admin/issue.ts';
import { AuditRecorder, openJsonlAuditSink, type AuditSink } from './audit/index.ts';
import { readSecret } from './config/load.ts';
import type { MeshgateConfig } from './config/schema.ts';
import type { MysqlEngineContext, RoleAccount } from './engines/mysql/context.ts';
import type { Logger } from './log.ts';
import { MysqlListener } from './engines/mysql/listener.ts';
import { probeServerProfile } from './engines/mysql/profile.ts';
import { mariadbUpstreamCheck } from './engines/mysql/upstream-check.ts';
import { firestoreUpstreamCheck } from './engines/firestore/upstream-check.ts';
import { checkUpstreams } from './upstream-checks.ts';
import { mgError } from './errors/index.ts';
import { createIdentityResolver, createTokenVerifier, JoinTokenStore, parseDuration, startSigningEndpoint, watchTlsMaterial } from './identity/index.ts';
import { fixedPolicy, loadPolicyDir } from './policy/index.ts';
import { admitEverything } from './throttle/index.ts';
import { openCredentialRuntime, type CredentialRuntime } from './credentials/index.ts';
import { UpstreamPool } from './engines/mysql/pool.ts';
import { leasedAccounts, staticAccounts, UpstreamSource } from './engines/mysql/upstream-source.ts';
import { startFirestore } from './engines/firestore/start.ts';
import type { RunningEmulator } from './dev/firestore-emulator.ts';

export interface RunningMeshgate {
  readonly address: AddressInfo;
  readonly audit: AuditSink;
  readonly listener: MysqlListener;
  /** Dynamic credentials, when configured (upstream.credentials). */
  readonly credentials: CredentialRuntime | null;
  readonly pool: UpstreamPool;
  /** The SVID signing endpoint's port, when `signer` is configured. */
  readonly signerPort: number | null;
  /** The admin API's port, when `admin` and dynamic credentials are configured. */
  readonly adminPort: number | null;
  /** The Firestore gRPC listener's port, when `firestore` is configured. */
  readonly firestorePort: number | null;
  /** The emulator meshgate launched as Firestore upstream (firestore.upstream.launchEmulator). */
  readonly firestoreEmulator: Pick<RunningEmulator, 'kind' | 'host' | 'port' | 'description'> | null;
  close(): Promise<void>;
}

/** Undoes, last first, what startMeshgate set up: on a failed start and on close. */
class Teardown {
  private readonly steps: (() => unknown)[] = [];
  add(step: () => unknown): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) await step();
  }
}

function cannotListen(what: string, host: string, port: number, field: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code;
  return mgError('MG_CONFIG_INVALID', `cannot listen for ${what} on ${host}:${port} (${code}); choose another ${field}`, error);
}

export interface StartOptions {
  /** How long to wait for upstreams that do not answer yet (`--wait-for-upstream`); 0: fail at once. */
  readonly waitForUpstreamMs?: number;
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
  const policy = await loadPolicyDir(config.policy.dir);
  const staticRoles = new Map<string, RoleAccount>();
  for (const [role, account] of Object.entries(config.upstream.roles)) {
    staticRoles.set(role, { user: account.user, password: readSecret(account.password, `upstream.roles.${role}.password`, env) });
  }
  const tokens = config.tokens === undefined ? undefined : await createTokenVerifier(config.tokens);
  const verifyToken = tokens === undefined ? undefined : (token: string) => tokens.verify(token);
  const upstream = { host: config.upstream.host, port: config.upstream.port, connectTimeoutMs: config.upstream.connectTimeoutMs };
  // Each upstream that does not answer or refuses meshgate gets its own log line with the fix.
  const checks = [mariadbUpstreamCheck(config, env), ...(config.firestore === undefined ? [] : [firestoreUpstreamCheck(config.firestore)])];
  await checkUpstreams(checks, { log, waitMs: options.waitForUpstreamMs ?? 0 });
  const profile = await probeServerProfile(upstream);
  const trustDomains = config.trust.trustDomains;
  const identity = createIdentityResolver({ trustDomains, verifyToken });

  // Certificate, key and trust bundles reload when their files change (CA rotation, an
  // agent or Istio renewing meshgate's SVID); open sessions keep the context they began with.
  const tls = await watchTlsMaterial({
    certFile: config.listener.tls.cert,
    keyFile: config.listener.tls.key,
    bundleFiles: config.trust.bundles,
    contextOptions: {
      minVersion: 'TLSv1.2',
      // Without a session id context OpenSSL aborts resumption of client-authenticated
      // sessions with an internal_error alert; drivers such as mysql2 do resume.
      sessionIdContext: 'meshgate-mysql',
    },
    log,
    onError: (error) => log.error('TLS files changed but do not load; still serving the previous ones', { error: error.message }),
    onChange: (change) => log.info('TLS material reloaded', { ...change.certificate, trustedRoots: change.bundleCertificates }),
  });
  teardown.add(() => tls.close());
  const audit = await openJsonlAuditSink(config.audit.file, {
    highWaterEvents: config.audit.highWaterEvents,
    onError: (error) => log.error('audit sink cannot write; sessions are held back until it can', { file: config.audit.file, error: error.message }),
  });
  // Closed after every engine, so the events of sessions ended by shutdown are written.
  teardown.add(() => audit.close());
  const recorder = new AuditRecorder(audit);
  const policySource = fixedPolicy(policy);

  let pool: UpstreamPool | null = null;
  const credentials =
    config.upstream.credentials === undefined
      ? null
      : await openCredentialRuntime(config, { log, env, background: true, onLeaseEnded: (leaseId) => pool?.evictLease(leaseId) });
  if (credentials !== null) teardown.add(() => credentials.close({ dropSessionLeases: true }));
  pool = new UpstreamPool({
    maxIdlePerKey: config.upstream.pool.maxIdlePerKey,
    idleTimeoutMs: parseDuration(config.upstream.pool.idleTimeout) * 1000,
    isLeaseUsable: (leaseId) => leaseId === null || (credentials?.leases.isUsable(leaseId) ?? false),
  });
  const upstreamPool = pool;
  teardown.add(() => upstreamPool.close());
  if (credentials !== null) {
    // Leases a crash left behind (kill -9): expired ones, and this replica's own, whose passwords died with it.
    const reclaimed = await credentials.leases.reclaimOrphans();
    if (reclaimed > 0) log.info('revoked leases left by an earlier run', { leases: reclaimed });
  }
  const source = new UpstreamSource(upstream, credentials === null ? staticAccounts(staticRoles) : leasedAccounts(credentials.leases), pool);
  const ctx: MysqlEngineContext = {
    profile,
    upstream,
    tlsRequired: config.listener.tls.required,
    tlsMode: config.listener.tls.mode,
    secureContext: () => tls.secureContext(),
    identity,
    policy: policySource,
    throttle: admitEverything,
    openUpstream: (caller, role, login) => source.open(caller, role, login),
    audit: recorder,
    log,
    maxClientMessageBytes: config.listener.maxClientMessageBytes,
    tagStatements: config.audit.tagStatements,
  };
  const listener = new MysqlListener(ctx);
  const address = await listener.listen({ host: config.listener.host, port: config.listener.port }).catch((error: unknown) => {
    throw cannotListen('MySQL clients', config.listener.host, config.listener.port, 'listener.port', error);
  });
  teardown.add(() => listener.close());

  // Only workload identities get SVIDs: a Kubernetes service account (or a JWT-SVID of the
  // same shape), never a CI job or a person holding an OIDC token.
  const workloadToken = async (token: string) => {
    const identity = await tokens!.verify(token);
    if (identity.namespace === null || identity.serviceAccount === null) {
      throw mgError('MG_TOKEN_CLAIMS_INVALID', 'SVIDs are issued to workloads: present a Kubernetes service-account token');
    }
    return identity;
  };
  const signer =
    config.signer === undefined
      ? null
      : await startSigningEndpoint({
          host: config.signer.host,
          port: config.signer.port,
          caDir: config.signer.caDir,
          tls: { cert: config.listener.tls.cert, key: config.listener.tls.key },
          svidTtlSeconds: config.signer.svidTtlSeconds,
          renewWithSvid: config.signer.renewWithSvid,
          issuancesPerMinute: config.signer.issuancesPerMinute,
          log,
          ...(tokens === undefined ? {} : { verifyToken: workloadToken }),
          ...(config.signer.joinTokens ? { joinTokens: new JoinTokenStore(config.signer.caDir) } : {}),
        });
  if (signer !== null) teardown.add(() => signer.close());

  // The admin API (credentials for CI, lease administration) serves dynamic credentials only.
  if (config.admin !== undefined && credentials === null) log.warn('admin is configured but upstream.credentials is not; the admin API serves dynamic credentials only and stays off');
  const adminApi =
    config.admin === undefined || credentials === null
      ? null
      : await startAdminApi({
          host: config.admin.host,
          port: config.admin.port,
          tls,
          trustDomains,
          admins: config.admin.principals,
          leases: credentials.leases,
          policy: () => policy,
          ...(verifyToken === undefined ? {} : { verifyToken }),
          upstream: { host: upstream.host, port: upstream.port },
          rotateAdmin: () => credentials.rotateAdmin(),
          adminAccount: adminAccountOf(config),
          log,
        });
  if (adminApi !== null) teardown.add(() => adminApi.close());

  const firestore =
    config.firestore === undefined
      ? null
      : await startFirestore(config.firestore, { tls, policy: policySource, throttle: admitEverything, audit: recorder, log, identity });
  if (firestore !== null) teardown.add(() => firestore.close());

  log.info('meshgate listening', {
    address: `${address.address}:${address.port}`,
    upstream: `${upstream.host}:${upstream.port}`,
    upstreamVersion: profile.serverVersion,
    policyRules: policy.ruleCount,
    credentials: credentials === null ? 'static accounts (upstream.roles)' : `dynamic leases, state in ${credentials.store.kind} ${credentials.store.location}`,
    audit: config.audit.file,
    signer: signer === null ? null : `${config.signer!.host}:${signer.port}`,
    firestore: firestore === null ? null : `${config.firestore!.host}:${firestore.port} → ${firestore.upstream}`,
  });
  return {
    address,
    audit,
    listener,
    credentials,
    pool,
    signerPort: signer?.port ?? null,
    adminPort: adminApi?.port ?? null,
    firestorePort: firestore?.port ?? null,
    firestoreEmulator: firestore?.emulator ?? null,
    close: () => teardown.run(),
  };
}
