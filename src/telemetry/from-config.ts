/** Tracing as the configuration asks for it: off without a `tracing` section. */
import { hostname } from 'node:os';
import type { MeshgateConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { MESHGATE_VERSION } from '../version.ts';
import type { ServerAddress } from './span-attributes.ts';
import { startTracing, type Tracing } from './tracing.ts';

export function tracingFor(config: MeshgateConfig, log: Logger, env: NodeJS.ProcessEnv): Tracing | null {
  if (config.tracing === undefined) return null;
  const firestoreServer = firestoreServerOf(config.firestore?.upstream);
  return startTracing(config.tracing, {
    log,
    env,
    version: MESHGATE_VERSION,
    instanceId: config.state.replicaId ?? hostname(),
    ...(config.upstream === undefined ? {} : { mysqlServer: { address: config.upstream.host, port: config.upstream.port } }),
    ...(firestoreServer === undefined ? {} : { firestoreServer }),
    ...(config.firestore === undefined ? {} : { firestoreProject: config.firestore.project }),
  });
}

/** Known from the file unless meshgate launches the emulator itself (then from the running one). */
function firestoreServerOf(upstream: NonNullable<MeshgateConfig['firestore']>['upstream'] | undefined): ServerAddress | undefined {
  if (upstream === undefined || 'launchEmulator' in upstream) return undefined;
  if ('emulator' in upstream) {
    const at = upstream.emulator.lastIndexOf(':');
    return { address: upstream.emulator.slice(0, at), port: Number(upstream.emulator.slice(at + 1)) };
  }
  const url = new URL(upstream.google.endpoint);
  return { address: url.hostname, port: url.port === '' ? 443 : Number(url.port) };
}
