/**
 * `serve --workers N`: N processes share meshgate's ports (node:cluster), and each is a
 * replica in every other respect. What a replica must not share with another, a worker gets
 * for itself here: its name on the leases it writes (a replica revokes its own leases from an
 * earlier run at start, so two workers with one name would revoke each other's) and its own
 * hash-chained audit log (one chain has one writer). Pure: the config in, the worker's out.
 */
import { hostname } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import type { MeshgateConfig } from '../config/schema.ts';
import { mgError } from '../errors/index.ts';

/** More processes than this on one host is a misconfiguration, not a deployment. */
export const MAX_WORKERS = 64;

/** `--workers N` or `--workers auto` (one per core the process may use); absent: 1, no cluster. */
export function parseWorkers(value: string | undefined, cores: number): number {
  if (value === undefined) return 1;
  if (value === 'auto') return Math.max(1, Math.min(cores, MAX_WORKERS));
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_WORKERS) {
    throw mgError('MG_USAGE', `--workers takes a number of processes from 1 to ${MAX_WORKERS}, or auto (one per core: ${cores} here); got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** `audit.jsonl` → `audit.w2.jsonl`: beside the others, and never taken for a rotated file (`audit.000001.jsonl`). */
export function workerFile(file: string, index: number): string {
  const ext = extname(file);
  const name = basename(file);
  const stem = ext === '' ? name : name.slice(0, -ext.length);
  return join(dirname(file), `${stem}.w${index}${ext}`);
}

/** The replica name of worker `index` (from 1). */
export function workerReplicaId(config: Pick<MeshgateConfig, 'state'>, index: number, host: string = hostname()): string {
  return `${config.state.replicaId ?? host}-w${index}`;
}

/**
 * Worker `index`'s configuration: its own replica name, audit log and anchor, and its own
 * policy clone (git keeps one writer per repository: two workers fetching into one would
 * trip over each other's lock files).
 */
export function workerConfig(config: MeshgateConfig, index: number, host: string = hostname()): MeshgateConfig {
  const git = config.policy.git;
  return {
    ...config,
    ...(git?.workDir === undefined ? {} : { policy: { ...config.policy, git: { ...git, workDir: join(git.workDir, `w${index}`) } } }),
    state: { ...config.state, replicaId: workerReplicaId(config, index, host) },
    audit: {
      ...config.audit,
      file: workerFile(config.audit.file, index),
      ...(config.audit.anchorId === undefined ? {} : { anchorId: `${config.audit.anchorId}-w${index}` }),
    },
  };
}

/**
 * What in a configuration several workers cannot share, or null. An emulator meshgate
 * launches lives in one process: each worker would start its own, each with its own documents.
 */
export function workersProblem(config: MeshgateConfig, count: number): string | null {
  if (count > 1 && config.firestore !== undefined && 'launchEmulator' in config.firestore.upstream) {
    return `--workers ${count} with firestore.upstream.launchEmulator would start one emulator per worker, each with its own documents: start the emulator yourself and name it (firestore.upstream.emulator: HOST:PORT), or run one worker`;
  }
  return null;
}
