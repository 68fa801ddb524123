/** The Firestore engine assembled from its config section, behind the gRPC front door. */
import type { AuditRecorder } from '../../audit/index.ts';
import type { MeshgateConfig } from '../../config/schema.ts';
import { mgError } from '../../errors/index.ts';
import type { IdentityResolver, TlsMaterial } from '../../identity/index.ts';
import type { PolicySource } from '../../policy/index.ts';
import type { Throttle, UpstreamBudget } from '../../throttle/index.ts';
import { GrpcFrontDoor } from '../../transport/grpc/index.ts';
import type { Logger } from '../../log.ts';
import { SHUTDOWN_MESSAGE } from '../engine.ts';
import { FirestoreEngine } from './engine.ts';
import { emulatorAuth, type UpstreamAuth } from '../../credentials/index.ts';
import { parseDuration } from '../../identity/index.ts';
import { ReadOnlyTransactions } from './transactions.ts';
import { FirestoreUpstream } from './upstream.ts';
import { startFirestoreEmulator, type RunningEmulator } from '../../dev/firestore-emulator.ts';

export type FirestoreConfig = NonNullable<MeshgateConfig['firestore']>;

export interface FirestoreDeps {
  /** meshgate's certificate and trust bundles; needed for `tls: mtls`, unused in plaintext. */
  readonly tls: TlsMaterial | null;
  readonly policy: PolicySource;
  readonly throttle: Throttle;
  /** throttle.firestore: concurrent calls shared by the service classes. */
  readonly streams?: UpstreamBudget | null;
  readonly audit: AuditRecorder;
  readonly log: Logger;
  readonly identity: IdentityResolver;
  /** Tokens for Google (firestore.upstream.google): for the service account each allowing rule names. */
  readonly google: UpstreamAuth;
}

export interface RunningFirestore {
  readonly port: number;
  /** Where calls go, for the start-up log line. */
  readonly upstream: string;
  /** The emulator meshgate launched (firestore.upstream.launchEmulator), stopped by close(). */
  readonly emulator: RunningEmulator | null;
  /** No new connection or call (GOAWAY); resolves once the calls under way have ended. */
  drain(): Promise<void>;
  /** Calls open now. */
  readonly open: number;
  close(): Promise<void>;
}

export async function startFirestore(config: FirestoreConfig, deps: FirestoreDeps): Promise<RunningFirestore> {
  if (config.tls === 'mtls' && deps.tls === null) throw new TypeError("firestore.tls: mtls needs meshgate's certificate (config tls)");
  const emulator = 'launchEmulator' in config.upstream ? await launchEmulator(config.upstream.launchEmulator.port, deps.log) : null;
  try {
    return await serve(config, deps, emulator);
  } catch (error) {
    await emulator?.stop();
    throw error;
  }
}

async function launchEmulator(port: number, log: Logger): Promise<RunningEmulator> {
  const emulator = await startFirestoreEmulator(port === 0 ? {} : { port });
  const fields = { address: `${emulator.host}:${emulator.port}`, kind: emulator.kind };
  if (emulator.kind === 'official') log.info(`launched ${emulator.description} as the Firestore upstream (firestore.upstream.launchEmulator)`, fields);
  else log.warn(`Google's Firestore emulator is not installed here; launched ${emulator.description} as the Firestore upstream`, fields);
  return emulator;
}

/** Where calls go: the launched or configured emulator, or Google. */
function upstreamOf(config: FirestoreConfig, emulator: RunningEmulator | null, google: UpstreamAuth): { upstream: FirestoreUpstream; description: string } {
  if (emulator !== null) {
    return { upstream: new FirestoreUpstream({ url: `http://${emulator.host}:${emulator.port}`, auth: emulatorAuth }), description: `launched emulator ${emulator.host}:${emulator.port}` };
  }
  if ('emulator' in config.upstream) {
    return { upstream: new FirestoreUpstream({ url: `http://${config.upstream.emulator}`, auth: emulatorAuth }), description: `emulator ${config.upstream.emulator}` };
  }
  if ('google' in config.upstream) {
    return { upstream: new FirestoreUpstream({ url: config.upstream.google.endpoint, auth: google }), description: config.upstream.google.endpoint };
  }
  throw new TypeError('firestore.upstream.launchEmulator without a launched emulator');
}

async function serve(config: FirestoreConfig, deps: FirestoreDeps, emulator: RunningEmulator | null): Promise<RunningFirestore> {
  const { upstream, description } = upstreamOf(config, emulator, deps.google);
  const engine = new FirestoreEngine({
    project: config.project,
    policy: deps.policy,
    throttle: deps.throttle,
    streams: deps.streams ?? null,
    upstream,
    transactions: new ReadOnlyTransactions(),
    audit: deps.audit,
    log: deps.log,
    maxMessageBytes: config.maxMessageBytes,
    // Answers are not ours to limit; this only bounds what meshgate buffers to count them.
    maxResponseMessageBytes: 256 * 1024 * 1024,
    requestTimeoutMs: ms(config.timeouts.request),
    drainTimeoutMs: ms(config.timeouts.drain),
  });
  const door = new GrpcFrontDoor({
    tls: config.tls === 'mtls' ? deps.tls : null,
    identity: deps.identity,
    trustedHops: config.trustedHops,
    log: deps.log,
    timeouts: { handshakeMs: ms(config.timeouts.handshake), idleMs: ms(config.timeouts.idle) },
    onCall: engine.onCall,
    onRefused: engine.onRefused,
    onConnectionRefused: engine.onConnectionRefused,
  });
  const address = await door.listen(config.host, config.port).catch((error: unknown) => {
    upstream.close();
    const code = (error as NodeJS.ErrnoException).code;
    throw mgError('MG_CONFIG_INVALID', `cannot listen for Firestore clients on ${config.host}:${config.port} (${code}); choose another firestore.port`, error);
  });
  return {
    port: address.port,
    upstream: description,
    emulator,
    drain() {
      door.drain();
      return engine.idle();
    },
    get open() {
      return engine.open;
    },
    async close() {
      // No new connection or call; the calls under way finish (bounded) and are recorded,
      // then what is left of the connections goes, then the upstream.
      door.drain();
      await engine.settle(SHUTDOWN_MESSAGE);
      await door.close();
      upstream.close();
      await emulator?.stop();
    },
  };
}

const ms = (duration: string) => parseDuration(duration) * 1000;
