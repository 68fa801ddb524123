/**
 * The engines meshgate has, by name, and how the ones a configuration turns on start
 * together: in registry order, each from its own config section; when one fails to start,
 * those already running are closed again, so a failed start leaves no port open.
 */
import type { MeshgateConfig } from '../config/schema.ts';
import type { Engine, EngineDeps, RunningEngine } from './engine.ts';
import { firestoreEngine } from './firestore/index.ts';
import { mysqlEngine } from './mysql/index.ts';

export { SHUTDOWN_MESSAGE } from './engine.ts';
export type { Clock, Endpoint, Engine, EngineCredentials, EngineDeps, RunningEngine } from './engine.ts';
export type { FirestoreConfig, RunningFirestoreEngine } from './firestore/index.ts';
export type { MysqlConfig, RunningMysql } from './mysql/index.ts';

/** Started in this order, closed in the reverse. */
export const ENGINES = [mysqlEngine, firestoreEngine] as const;

export type AnyEngine = Engine<unknown, RunningEngine>;

/** The handle of each engine of `E` that runs, under its name (`handles.mysql`). */
export type RunningHandles<E extends readonly AnyEngine[]> = {
  readonly [K in E[number] as K['name']]?: Awaited<ReturnType<K['start']>>;
};

export interface RunningEngines<E extends readonly AnyEngine[]> {
  readonly byName: RunningHandles<E>;
  /** In start order. */
  readonly all: readonly RunningEngine[];
  /** Shutdown, first step: no engine takes new work; resolves once none has any open. */
  drain(): Promise<void>;
  /** Sessions and calls open now, by engine. */
  open(): Readonly<Record<string, number>>;
  /** Closes every engine, last started first; each is closed even when another's close fails. */
  close(): Promise<void>;
}

export async function startEngines<const E extends readonly AnyEngine[]>(config: MeshgateConfig, deps: EngineDeps, engines: E): Promise<RunningEngines<E>> {
  const names = new Set<string>();
  for (const engine of engines) {
    if (names.has(engine.name)) throw new TypeError(`two engines are named ${engine.name}`);
    names.add(engine.name);
  }
  const started: { readonly name: string; readonly running: RunningEngine }[] = [];
  const close = async () => {
    const failures: unknown[] = [];
    for (const { running } of started.splice(0).reverse()) {
      try {
        await running.close();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, `${failures.length} engines failed to close`);
  };
  for (const engine of engines) {
    const section = engine.configOf(config);
    if (section === undefined) continue;
    try {
      started.push({ name: engine.name, running: await engine.start(section, deps) });
    } catch (error) {
      await close().catch((closeError: unknown) => deps.log.error('an engine did not close after another failed to start', { error: String(closeError) }));
      throw error;
    }
  }
  return {
    byName: Object.fromEntries(started.map(({ name, running }) => [name, running])) as RunningHandles<E>,
    all: started.map(({ running }) => running),
    drain: async () => {
      await Promise.all(started.map(({ running }) => running.drain()));
    },
    open: () => Object.fromEntries(started.map(({ name, running }) => [name, running.open])),
    close,
  };
}
