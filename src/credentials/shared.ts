/**
 * The MariaDB credential runtime as `serve` shares it: the MySQL engine takes session
 * accounts from it, the admin API issues and revokes leases through it. It is opened by the
 * first that asks (the MySQL engine, once its upstream check has passed, so that a refused
 * admin login is reported by the check, naming the account, MariaDB's error and the fix,
 * rather than failing somewhere inside the lease manager) and the same one serves every later
 * caller. A lease that ends is announced to every subscriber: the engine's pool drops the
 * connections that ride on it.
 */
import type { MeshgateConfig } from '../config/schema.ts';
import type { MariadbClientTls } from '../transport/mariadb-client-tls.ts';
import type { LeaseLog } from './leases.ts';
import { openCredentialRuntime, type CredentialReports, type CredentialRuntime } from './runtime.ts';

export interface MariadbCredentials {
  /** The runtime, opened on the first call (and orphaned leases of an earlier run revoked). */
  open(): Promise<CredentialRuntime>;
  /** The runtime when open() has succeeded; null before. */
  opened(): CredentialRuntime | null;
  /** `listener` hears of each lease that ends (revoked, expired, rotated away); returns the unsubscribe. */
  onLeaseEnded(listener: (leaseId: string) => void): () => void;
  /** Drops this replica's session accounts and closes the store: after every engine has closed. */
  close(): Promise<void>;
}

export interface SharedCredentialOptions {
  readonly log: LeaseLog;
  readonly env: NodeJS.ProcessEnv;
  readonly report?: CredentialReports;
  /** upstream.tls as the MySQL engine uses it, so leases require the certificate sessions present. */
  readonly tls: MariadbClientTls | null;
}

/** Null when the config has no dynamic credentials (static `upstream.roles`, or no MariaDB at all). */
export function sharedMariadbCredentials(config: MeshgateConfig, options: SharedCredentialOptions): MariadbCredentials | null {
  if (config.upstream?.credentials === undefined) return null;
  const listeners = new Set<(leaseId: string) => void>();
  let opening: Promise<CredentialRuntime> | null = null;
  let runtime: CredentialRuntime | null = null;

  const open = async (): Promise<CredentialRuntime> => {
    const opened = await openCredentialRuntime(config, {
      log: options.log,
      env: options.env,
      tls: options.tls,
      background: true,
      ...(options.report === undefined ? {} : { report: options.report }),
      onLeaseEnded: (leaseId) => {
        for (const listener of listeners) listener(leaseId);
      },
    });
    try {
      // Leases a crash left behind (kill -9): expired ones, and this replica's own, whose passwords died with it.
      const reclaimed = await opened.leases.reclaimOrphans();
      if (reclaimed > 0) options.log.info('revoked leases left by an earlier run', { leases: reclaimed });
    } catch (error) {
      await opened.close().catch(() => undefined);
      throw error;
    }
    runtime = opened;
    return opened;
  };

  return {
    open() {
      opening ??= open().catch((error: unknown) => {
        opening = null;
        throw error;
      });
      return opening;
    },
    opened: () => runtime,
    onLeaseEnded(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      const pending = opening;
      opening = null;
      runtime = null;
      listeners.clear();
      const opened = pending === null ? null : await pending.catch(() => null);
      await opened?.close({ dropSessionLeases: true });
    },
  };
}
