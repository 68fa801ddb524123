/**
 * The interface every protocol implements (DESIGN "Layout"). An engine finds its own
 * section of the configuration, starts from it and the stages all engines share, checks its
 * own upstream, and hands back what it listens on and how to stop. The composition root
 * (server.ts) knows engines only through this, so adding PostgreSQL or MongoDB is a new
 * folder registered in index.ts, not a change to the root.
 */
import type { AuditRecorder } from '../audit/index.ts';
import type { MeshgateConfig } from '../config/schema.ts';
import type { MariadbCredentials, UpstreamAuth } from '../credentials/index.ts';
import type { IdentityResolver, TlsMaterial } from '../identity/index.ts';
import type { Logger } from '../log.ts';
import type { PolicySource } from '../policy/index.ts';
import type { Throttle, UpstreamBudget } from '../throttle/index.ts';
import type { MariadbClientTls } from '../transport/mariadb-client-tls.ts';
import type { UpstreamWait } from '../upstream-checks.ts';

// Methods, not function-valued properties: an Engine<MysqlConfig> then fits where an
// Engine<unknown> is listed (index.ts), as a registry of different engines needs.
export interface Engine<Config, Running extends RunningEngine = RunningEngine> {
  /** 'mysql', 'firestore': unique, and the key of its handle on the running meshgate. */
  readonly name: string;
  /** This engine's part of the configuration; undefined when the config does not turn it on. */
  configOf(config: MeshgateConfig): Config | undefined;
  /**
   * Checks the upstream (waiting as deps.upstreams allows), then listens. A start that
   * fails leaves nothing of its own open.
   */
  start(config: Config, deps: EngineDeps): Promise<Running>;
}

/** What every engine gets from the rest of meshgate: the stages, and the material they share. */
export interface EngineDeps {
  readonly log: Logger;
  readonly identity: IdentityResolver;
  readonly policy: PolicySource;
  readonly throttle: Throttle;
  /** MariaDB connections shared by the service classes (throttle.upstream); null: no budget. */
  readonly upstreamBudget?: UpstreamBudget | null;
  /** Firestore calls shared by the service classes (throttle.firestore); null: no budget. */
  readonly firestoreStreams?: UpstreamBudget | null;
  readonly credentials: EngineCredentials;
  readonly audit: AuditRecorder;
  /**
   * meshgate's server certificate (config `tls`) and the trust bundles, loaded once and
   * reloaded when the files change, shared by every listener so a renewal reaches all ports
   * at once. Null when the configuration names no certificate: only a plaintext Firestore
   * port behind its Istio sidecar (the config refuses anything else without one).
   */
  readonly tls: TlsMaterial | null;
  readonly clock: Clock;
  /** Runs an engine's upstream checks within the one `--wait-for-upstream` budget of this start. */
  readonly upstreams: UpstreamWait;
  /** Where `{ env: NAME }` secrets are read. */
  readonly env: NodeJS.ProcessEnv;
}

/** Upstream credentials engines draw on; what meshgate holds, never what callers see. */
export interface EngineCredentials {
  /** MariaDB accounts per identity (upstream.credentials); null with static accounts or no MariaDB. */
  readonly mariadb: MariadbCredentials | null;
  /** meshgate's client certificate toward MariaDB (upstream.tls), shared with the lease manager; null without. */
  readonly mariadbTls: MariadbClientTls | null;
  /**
   * Short-lived Google tokens for the service account the allowing rule names
   * (firestore.upstream.google); minted on first use, so holding it costs nothing.
   */
  readonly google: UpstreamAuth;
}

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

/** A port an engine listens on. */
export interface Endpoint {
  /** What speaks there: 'mysql', 'grpc'. */
  readonly protocol: string;
  readonly host: string;
  readonly port: number;
}

export interface RunningEngine {
  readonly name: string;
  /** Addresses it listens on, for logs and tests. */
  readonly endpoints: readonly Endpoint[];
  /** Fields this engine adds to the 'meshgate: listening on …' log line (upstream, version, …). */
  readonly logFields: Readonly<Record<string, unknown>>;
  /**
   * Shutdown, first step (SIGTERM): takes no new connection or call; what is open goes on.
   * Resolves once nothing is open any more; the caller bounds the wait (shutdown.gracePeriod).
   */
  drain(): Promise<void>;
  /** How many sessions (MySQL) or calls (Firestore) are open now. */
  readonly open: number;
  /**
   * Stops accepting, ends its sessions (each audited; a client that waits for nothing hears
   * MG_SHUTTING_DOWN first), and lets go of its upstream.
   */
  close(): Promise<void>;
}

/** What a session or call still open when the grace period ends is told (MG_SHUTTING_DOWN). */
export const SHUTDOWN_MESSAGE =
  'meshgate is shutting down: this replica stopped taking work and the grace period (shutdown.gracePeriod) for open sessions is over; reconnect, and a running replica serves you';
