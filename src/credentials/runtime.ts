/**
 * The credential machinery assembled from the config: state store, MariaDB admin
 * connection, lease manager, the sweep that renews and reaps, and admin-password rotation.
 * `serve` runs it with sessions; the `creds` commands run it for one operation.
 */
import { hostname } from 'node:os';
import { readSecret } from '../config/load.ts';
import type { MeshgateConfig, UpstreamConfig } from '../config/schema.ts';
import { asMeshgateError, mgError, type MeshgateError } from '../errors/index.ts';
import { parseDuration } from '../identity/index.ts';
import { openEmbeddedStore, openPostgresStore, type LeaseRecord, type StateStore } from '../store/index.ts';
import { openMariadbClientTls, type MariadbClientTls } from '../transport/mariadb-client-tls.ts';
import { readAdminPassword, rotateAdminPassword } from './admin-secret.ts';
import { LeaseManager, type LeaseLog } from './leases.ts';
import { openMariadbAccounts, type AdminMariadbAccounts } from './mariadb-accounts.ts';

export interface CredentialRuntime {
  readonly store: StateStore;
  readonly accounts: AdminMariadbAccounts;
  readonly leases: LeaseManager;
  /** Sets a new random admin password in MariaDB and in the configured file; never returns it. */
  rotateAdmin(): Promise<void>;
  close(options?: { readonly dropSessionLeases?: boolean }): Promise<void>;
}

export interface CredentialRuntimeOptions {
  readonly log: LeaseLog;
  readonly env?: NodeJS.ProcessEnv;
  /** Run the renew/reap sweep (and scheduled admin rotation) in the background. */
  readonly background?: boolean;
  readonly onLeaseEnded?: (leaseId: string) => void;
  /** What meshgate does to credentials on its own (the sweep, a scheduled rotation), for the audit. */
  readonly report?: CredentialReports;
  readonly now?: () => number;
  /** upstream.tls, already loaded (serve shares one with the MySQL engine); absent: loaded here when configured. */
  readonly tls?: MariadbClientTls | null;
}

export interface CredentialReports {
  /** The sweep dropped a lease: expired, or left half-done by a crash. */
  reaped?(lease: LeaseRecord, reason: string): void;
  /** A scheduled rotation (rotateAdminEvery) of meshgate's admin password ended; null: it worked. */
  rotated?(error: MeshgateError | null): void;
}

export async function openStateStore(config: MeshgateConfig, env: NodeJS.ProcessEnv = process.env): Promise<StateStore> {
  const owner = replicaIdOf(config);
  if (config.state.postgres !== undefined) {
    const connectionString = readSecret(config.state.postgres.url, 'state.postgres.url', env);
    return openPostgresStore({ connectionString, schema: config.state.postgres.schema, owner });
  }
  return openEmbeddedStore(config.state.embedded!.dir, { owner });
}

export function replicaIdOf(config: MeshgateConfig): string {
  return config.state.replicaId ?? hostname();
}

export async function openCredentialRuntime(config: MeshgateConfig, options: CredentialRuntimeOptions): Promise<CredentialRuntime> {
  const upstream = config.upstream;
  const settings = upstream?.credentials;
  if (upstream === undefined || settings === undefined) {
    throw mgError('MG_CONFIG_INVALID', 'dynamic credentials are not configured: add upstream.credentials.admin to the meshgate config');
  }
  const env = options.env ?? process.env;
  const adminRef = settings.admin.password;
  const ownTls = options.tls === undefined && upstream.tls !== undefined ? await openMariadbClientTls(upstream.tls, options.log) : null;
  const tls = options.tls ?? ownTls;
  let accounts: AdminMariadbAccounts;
  let store: StateStore;
  try {
    accounts = openMariadbAccounts({
      host: upstream.host,
      port: upstream.port,
      user: settings.admin.user,
      password: await readAdminPassword(adminRef, env, (candidate) => canLogIn(upstream, settings.admin.user, candidate, tls)),
      connectTimeoutMs: upstream.connectTimeoutMs,
      userHost: settings.userHost,
      // `creds rotate-root` run as its own process writes the file; this process follows.
      rereadPassword: async () => readSecret(adminRef, 'upstream.credentials.admin.password', env),
      tls,
    });
  } catch (error) {
    ownTls?.close();
    throw error;
  }
  try {
    store = await openStateStore(config, env);
  } catch (error) {
    await accounts.close();
    ownTls?.close();
    throw error;
  }
  const seconds = (text: string) => parseDuration(text) * 1000;
  const leases = new LeaseManager({
    store,
    accounts,
    owner: replicaIdOf(config),
    userHost: settings.userHost,
    timings: {
      sessionTtlMs: seconds(settings.sessionTtl),
      sessionMaxTtlMs: seconds(settings.sessionMaxTtl),
      issuedTtlMs: seconds(settings.issuedTtl),
      issuedMaxTtlMs: seconds(settings.issuedMaxTtl),
    },
    issuedMaxLive: settings.issuedMaxLive,
    log: options.log,
    ...(options.report?.reaped === undefined ? {} : { onReaped: (lease: LeaseRecord, reason: string) => options.report!.reaped!(lease, reason) }),
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.onLeaseEnded === undefined ? {} : { onLeaseEnded: (lease) => options.onLeaseEnded!(lease.id) }),
    ...(tls === null ? {} : { requirement: () => requirementOf(tls) }),
  });
  const rotateAdmin = async () => {
    if (!('file' in adminRef)) {
      throw mgError('MG_CONFIG_INVALID', 'the admin password comes from an environment variable, which meshgate cannot update: use upstream.credentials.admin.password: { file }');
    }
    await rotateAdminPassword(adminRef.file, accounts);
    options.log.info('admin credential rotated', { user: settings.admin.user, file: adminRef.file });
  };
  const timers: NodeJS.Timeout[] = [];
  if (options.background === true) {
    let sweeping = false;
    const sweep = async () => {
      if (sweeping) return;
      sweeping = true;
      try {
        await leases.maintain();
      } catch (error) {
        options.log.warn('lease sweep failed; retrying at the next one', { error: asMeshgateError(error).message });
      } finally {
        sweeping = false;
      }
    };
    timers.push(setInterval(() => void sweep(), seconds(settings.sweepInterval)));
    if (settings.rotateAdminEvery !== undefined) {
      timers.push(
        setInterval(() => {
          rotateAdmin().then(
            () => options.report?.rotated?.(null),
            (error: unknown) => {
              options.log.error('scheduled admin rotation failed; the old credential stays in use', { error: asMeshgateError(error).message });
              options.report?.rotated?.(asMeshgateError(error));
            },
          );
        }, seconds(settings.rotateAdminEvery)),
      );
    }
    for (const timer of timers) timer.unref();
  }
  return {
    store,
    accounts,
    leases,
    rotateAdmin,
    async close(closeOptions = {}) {
      for (const timer of timers) clearInterval(timer);
      if (closeOptions.dropSessionLeases === true) await leases.close().catch(() => undefined);
      await accounts.close();
      await store.close();
      ownTls?.close();
    },
  };
}

/** Session accounts require meshgate's certificate; without a subject MariaDB can require, none is made weaker instead. */
function requirementOf(tls: MariadbClientTls) {
  const requirement = tls.requirement();
  if (requirement === null) {
    throw mgError(
      'MG_TLS_MATERIAL_INVALID',
      `upstream.tls.cert (${tls.files.cert}) has no subject MariaDB can require of lease accounts, so none is created: ` +
        'issue one with a plain subject, e.g. `meshgate ca issue-server --dns meshgate-upstream --name upstream`',
    );
  }
  return requirement;
}

/** Used only to pick between the file and a rotation left half-done by a crash. */
async function canLogIn(upstream: UpstreamConfig, user: string, password: string, tls: MariadbClientTls | null): Promise<boolean> {
  const probe = openMariadbAccounts({
    host: upstream.host,
    port: upstream.port,
    user,
    password,
    connectTimeoutMs: upstream.connectTimeoutMs,
    retry: { attempts: 1, baseDelayMs: 10, maxDelayMs: 10 },
    tls,
  });
  try {
    await probe.roleExists('meshgate_probe');
    return true;
  } catch (error) {
    if (asMeshgateError(error).code === 'MG_UPSTREAM_AUTH_FAILED') return false;
    throw error;
  } finally {
    await probe.close();
  }
}
