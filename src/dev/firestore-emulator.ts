/**
 * A Firestore emulator to stand upstream in development, tests and the demo. Google's
 * official emulator (Debian package google-cloud-cli-firestore-emulator, Java) serves every
 * method and isolates transactions correctly; the in-process @firestore-emulator/server is
 * the fallback where it is absent, and it lacks ListDocuments, ListCollectionIds and
 * BatchWrite and gets collection groups and transactions wrong, so callers must say which
 * one ran.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { accepts, freePort } from './ports.ts';
import { mgError } from '../errors/index.ts';

export const OFFICIAL_EMULATOR_JAR = '/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar';

export type EmulatorKind = 'official' | 'in-process';

export interface RunningEmulator {
  readonly kind: EmulatorKind;
  readonly host: string;
  readonly port: number;
  /** What to print so a reader knows which emulator answered. */
  readonly description: string;
  /** Deletes every document (official emulator only; the in-process one restarts empty). */
  reset(projectId: string): Promise<void>;
  stop(): Promise<void>;
}

export interface EmulatorOptions {
  /** `auto`: the official emulator when Java and its jar are here, else the in-process one. */
  readonly prefer?: 'auto' | EmulatorKind;
  readonly port?: number;
  readonly startTimeoutMs?: number;
}

export function officialEmulatorAvailable(): boolean {
  return existsSync(OFFICIAL_EMULATOR_JAR) && (existsSync('/usr/bin/java') || process.env['JAVA_HOME'] !== undefined);
}

export async function startFirestoreEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const prefer = options.prefer ?? 'auto';
  if (prefer === 'official' || (prefer === 'auto' && officialEmulatorAvailable())) {
    if (!officialEmulatorAvailable()) {
      throw mgError('MG_CONFIG_INVALID', `the official Firestore emulator is not installed (${OFFICIAL_EMULATOR_JAR}): apt-get install google-cloud-cli-firestore-emulator openjdk-17-jre-headless`);
    }
    return startOfficial(options.port ?? (await freePort()), options.startTimeoutMs ?? 30_000);
  }
  return startInProcess(options.port ?? (await freePort()));
}

async function startOfficial(port: number, timeoutMs: number): Promise<RunningEmulator> {
  const java = process.env['JAVA_HOME'] ? `${process.env['JAVA_HOME']}/bin/java` : 'java';
  const child: ChildProcess = spawn(
    java,
    ['-Duser.language=en', '-cp', OFFICIAL_EMULATOR_JAR, 'com.google.cloud.datastore.emulator.firestore.CloudFirestore', '--host', '127.0.0.1', '--port', String(port)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + timeoutMs;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw mgError('MG_UPSTREAM_UNAVAILABLE', `the Firestore emulator did not start on 127.0.0.1:${port}: ${output.trim().split('\n').slice(-3).join(' | ')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    kind: 'official',
    host: '127.0.0.1',
    port,
    description: `Google's Cloud Firestore emulator (java, 127.0.0.1:${port})`,
    async reset(projectId) {
      const response = await fetch(`http://127.0.0.1:${port}/emulator/v1/projects/${encodeURIComponent(projectId)}/databases/(default)/documents`, { method: 'DELETE' });
      if (!response.ok) throw mgError('MG_UPSTREAM_UNAVAILABLE', `the Firestore emulator refused to reset (HTTP ${response.status})`);
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function startInProcess(port: number): Promise<RunningEmulator> {
  const { FirestoreServer } = (await import('@firestore-emulator/server')) as unknown as {
    FirestoreServer: new (options?: { host?: string }) => { start(port: number): Promise<void>; stop(): Promise<void> };
  };
  let server = new FirestoreServer();
  await server.start(port);
  return {
    kind: 'in-process',
    host: '127.0.0.1',
    port,
    description: `the in-process @firestore-emulator/server (127.0.0.1:${port}; no ListDocuments, ListCollectionIds or BatchWrite, collection groups and transactions not faithful)`,
    async reset() {
      await server.stop();
      server = new FirestoreServer();
      await server.start(port);
    },
    async stop() {
      await server.stop();
    },
  };
}
