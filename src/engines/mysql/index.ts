/**
 * The MySQL engine: MariaDB behind a MySQL-protocol listener. At start it checks that MariaDB
 * answers and takes each account meshgate will use, reads the server's greeting once (what
 * clients are told before they are known), then listens; sessions take upstream connections
 * from a pool per account, the account being a static one per role or a lease per identity.
 */
import type { AddressInfo } from 'node:net';
import { readSecret } from '../../config/load.ts';
import type { ListenerConfig, MeshgateConfig, UpstreamConfig } from '../../config/schema.ts';
import type { CredentialRuntime } from '../../credentials/index.ts';
import { mgError } from '../../errors/index.ts';
import { parseDuration } from '../../identity/index.ts';
import type { Engine, EngineDeps, RunningEngine } from '../engine.ts';
import type { MysqlEngineContext, RoleAccount } from './context.ts';
import { MysqlListener } from './listener.ts';
import { UpstreamPool } from './pool.ts';
import { probeServerProfile } from './profile.ts';
import { watchServerSettings, type AccountForRead } from './server-settings.ts';
import { mariadbUpstreamCheck } from './upstream-check.ts';
import { leasedAccounts, staticAccounts, UpstreamSource } from './upstream-source.ts';
import type { UpstreamTarget } from './upstream.ts';

export interface MysqlConfig {
  readonly listener: ListenerConfig;
  readonly upstream: UpstreamConfig;
  /** audit.tagStatements: name the caller in a comment on each statement sent upstream. */
  readonly tagStatements: boolean;
  /** audit.statementBytes: how much of each statement's text its audit event keeps. */
  readonly statementBytes: number;
  /** audit.parameterBytes: how much of a prepared statement parameter's value is kept. */
  readonly parameterBytes: number;
}

export interface RunningMysql extends RunningEngine {
  readonly name: 'mysql';
  readonly address: AddressInfo;
  readonly listener: MysqlListener;
  readonly pool: UpstreamPool;
  /** The dynamic credentials its sessions use; null with static accounts (upstream.roles). */
  readonly credentials: CredentialRuntime | null;
}

export const mysqlEngine = {
  name: 'mysql',
  configOf(config: MeshgateConfig): MysqlConfig | undefined {
    // The schema lets neither come without the other.
    if (config.listener === undefined || config.upstream === undefined) return undefined;
    return { listener: config.listener, upstream: config.upstream, tagStatements: config.audit.tagStatements, statementBytes: config.audit.statementBytes, parameterBytes: config.audit.parameterBytes };
  },
  start: startMysql,
} as const satisfies Engine<MysqlConfig, RunningMysql>;

async function startMysql(config: MysqlConfig, deps: EngineDeps): Promise<RunningMysql> {
  const { listener: listen, upstream } = config;
  const tls = deps.tls;
  if (tls === null) throw new TypeError('the MySQL engine needs TLS material: the config names meshgate\'s certificate (tls or listener.tls)');
  if ((upstream.credentials === undefined) !== (deps.credentials.mariadb === null)) {
    throw new TypeError('deps.credentials.mariadb must be given exactly when upstream.credentials is configured');
  }
  // Read first: a variable that is not set is a config mistake, said before any login.
  const staticRoles = new Map<string, RoleAccount>();
  for (const [role, account] of Object.entries(upstream.roles)) {
    staticRoles.set(role, { user: account.user, password: readSecret(account.password, `upstream.roles.${role}.password`, deps.env) });
  }
  // Each account that does not log in gets its own log line with the fix.
  const upstreamTls = deps.credentials.mariadbTls;
  if ((upstream.tls === undefined) !== (upstreamTls === null)) throw new TypeError('deps.credentials.mariadbTls must be given exactly when upstream.tls is configured');
  await deps.upstreams.check([mariadbUpstreamCheck(upstream, deps.env, upstreamTls)]);
  const target: UpstreamTarget = { host: upstream.host, port: upstream.port, connectTimeoutMs: upstream.connectTimeoutMs, tls: upstreamTls };
  const profile = await probeServerProfile(target);
  const credentials = deps.credentials.mariadb === null ? null : await deps.credentials.mariadb.open();
  const settings = await watchServerSettings(target, settingsReader(upstream, staticRoles, deps.env), deps.log);

  const pool = new UpstreamPool({
    maxIdlePerKey: upstream.pool.maxIdlePerKey,
    idleTimeoutMs: parseDuration(upstream.pool.idleTimeout) * 1000,
    isLeaseUsable: (leaseId) => leaseId === null || (credentials?.leases.isUsable(leaseId) ?? false),
  });
  const unsubscribe = deps.credentials.mariadb?.onLeaseEnded((leaseId) => pool.evictLease(leaseId)) ?? (() => undefined);
  const source = new UpstreamSource(target, credentials === null ? staticAccounts(staticRoles) : leasedAccounts(credentials.leases), pool, ({ sessionId, identity, verdict }) => {
    const { lease } = verdict;
    deps.log.error('lease compromised: MariaDB refused its password, the account was changed outside meshgate; revoked', {
      sessionId,
      identity: identity.spiffeId,
      lease: lease.id,
      role: lease.role,
      username: lease.username,
      reason: verdict.reason,
      action: verdict.action,
    });
    deps.audit.alert({
      engine: 'mysql',
      sessionId,
      alert: 'lease_compromised',
      identity,
      lease: { id: lease.id, role: lease.role, account: `${lease.username}@${lease.userHost}` },
      reason: verdict.reason,
      action: verdict.action,
    });
  });
  const ctx: MysqlEngineContext = {
    profile,
    upstream: target,
    tlsRequired: listen.tls.required,
    tlsMode: listen.tls.mode,
    secureContext: () => tls.secureContext(),
    identity: deps.identity,
    policy: deps.policy,
    throttle: deps.throttle,
    upstreamBudget: deps.upstreamBudget ?? null,
    openUpstream: (caller, role, login, sessionId) => source.open(caller, role, login, sessionId),
    audit: deps.audit,
    log: deps.log,
    maxClientMessageBytes: listen.maxClientMessageBytes,
    handshakeTimeoutMs: parseDuration(listen.timeouts.handshake) * 1000,
    drainTimeoutMs: parseDuration(listen.timeouts.drain) * 1000,
    tagStatements: config.tagStatements,
    auditStatementBytes: config.statementBytes,
    auditParameterBytes: config.parameterBytes,
    queryCacheMode: () => settings.queryCacheMode,
    charsetOf: (collation) => settings.charsetOf(collation),
  };
  const listener = new MysqlListener(ctx);
  let address: AddressInfo;
  try {
    address = await listener.listen({ host: listen.host, port: listen.port });
  } catch (error) {
    unsubscribe();
    pool.close();
    settings.stop();
    const code = (error as NodeJS.ErrnoException).code;
    throw mgError('MG_CONFIG_INVALID', `cannot listen for MySQL clients on ${listen.host}:${listen.port} (${code}); choose another listener.port`, error);
  }
  return {
    name: 'mysql',
    endpoints: [{ protocol: 'mysql', host: address.address, port: address.port }],
    logFields: {
      address: `${address.address}:${address.port}`,
      upstream: `${upstream.host}:${upstream.port}`,
      upstreamVersion: profile.serverVersion,
      credentials: credentials === null ? 'static accounts (upstream.roles)' : `dynamic leases, state in ${credentials.store.kind} ${credentials.store.location}`,
    },
    address,
    listener,
    pool,
    credentials,
    drain: () => listener.stopAccepting(),
    get open() {
      return listener.activeSessions;
    },
    async close() {
      // Sessions end (and are audited) before the pool lets go of their connections; the
      // leases themselves are the credential runtime's to drop, after every engine.
      await listener.close();
      unsubscribe();
      pool.close();
      settings.stop();
    },
  };
}

/** The account that reads server settings: the admin account, or with static accounts the first role's. */
function settingsReader(upstream: UpstreamConfig, staticRoles: ReadonlyMap<string, RoleAccount>, env: NodeJS.ProcessEnv): AccountForRead {
  const admin = upstream.credentials?.admin;
  if (admin !== undefined) {
    // Read each time: `creds rotate-root` may have changed it.
    return () => ({ user: admin.user, password: readSecret(admin.password, 'upstream.credentials.admin.password', env) });
  }
  const first = staticRoles.values().next();
  return () => (first.done === true ? null : first.value);
}
