/**
 * The Firestore engine: google.firestore.v1.Firestore behind a gRPC listener, turned on by
 * the `firestore` section alone. It needs no MariaDB: its upstream is an emulator or Google.
 */
import type { MeshgateConfig } from '../../config/schema.ts';
import type { Engine, EngineDeps, RunningEngine } from '../engine.ts';
import type { RunningEmulator } from '../../dev/firestore-emulator.ts';
import { startFirestore, type FirestoreConfig } from './start.ts';
import { firestoreUpstreamCheck } from './upstream-check.ts';

export type { FirestoreConfig } from './start.ts';

export interface RunningFirestoreEngine extends RunningEngine {
  readonly name: 'firestore';
  readonly port: number;
  /** The emulator meshgate launched (firestore.upstream.launchEmulator), stopped by close(). */
  readonly emulator: RunningEmulator | null;
}

export const firestoreEngine = {
  name: 'firestore',
  configOf: (config: MeshgateConfig): FirestoreConfig | undefined => config.firestore,
  start: startFirestoreEngine,
} as const satisfies Engine<FirestoreConfig, RunningFirestoreEngine>;

async function startFirestoreEngine(config: FirestoreConfig, deps: EngineDeps): Promise<RunningFirestoreEngine> {
  // A configured emulator must answer; for Google, meshgate's own credentials must give a token.
  await deps.upstreams.check([firestoreUpstreamCheck(config)]);
  const running = await startFirestore(config, {
    tls: deps.tls,
    policy: deps.policy,
    throttle: deps.throttle,
    streams: deps.firestoreStreams ?? null,
    audit: deps.audit,
    log: deps.log,
    identity: deps.identity,
    google: deps.credentials.google,
  });
  return {
    name: 'firestore',
    endpoints: [{ protocol: 'grpc', host: config.host, port: running.port }],
    logFields: { firestore: `${config.host}:${running.port} → ${running.upstream}` },
    port: running.port,
    emulator: running.emulator,
    drain: () => running.drain(),
    get open() {
      return running.open;
    },
    close: () => running.close(),
  };
}
