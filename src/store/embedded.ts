/**
 * The embedded state store: one JSON file, nothing to set up. The server and CLI commands
 * (`meshgate creds revoke`) on one host share it, so every write happens under a lock file
 * and re-reads the file first; nothing is cached between operations, because another
 * process may have written since.
 *
 * A file that cannot be parsed is an error, never an empty store: starting empty would
 * forget MariaDB accounts that still exist, and nothing would ever drop them.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { mgError, type MeshgateError } from '../errors/index.ts';
import { writeAtomic } from '../fs-atomic.ts';
import { acquireLock, errnoCode, reason, releaseLock, unavailable } from './file-lock.ts';
import type { LeaseFilter, LeasePatch, LeaseRecord, LeaseState, StateStore } from './types.ts';

export const LEASES_FILE = 'leases.json';
export { LEASES_LOCK_FILE, LEASES_TURN_FILE } from './file-lock.ts';
const FILE_VERSION = 1;
const DEFAULT_LOCK_TIMEOUT_MS = 10_000;

export interface EmbeddedStoreOptions {
  /** Written into every record this store changes; defaults to host/pid. */
  readonly owner?: string;
  readonly now?: () => number;
  readonly lockTimeoutMs?: number;
}

const LEASE_STATES: readonly LeaseState[] = ['creating', 'active', 'revoking', 'revoked'];
const PATCH_KEYS = ['expiresAt', 'revokedAt', 'revokeReason', 'owner', 'updatedAt'] as const;

function corrupt(path: string, problem: string, cause?: unknown): MeshgateError {
  return unavailable(
    `the state file ${path} ${problem}; meshgate will not start from an empty store because it would forget MariaDB accounts it created. ` +
      'Restore the file from a backup; if there is none, drop the meshgate-created MariaDB accounts by hand and move the file aside',
    cause,
  );
}

type FieldKind = 'string' | 'integer' | 'string|null' | 'integer|null' | 'purpose' | 'state';

/** Every LeaseRecord field (the Record type makes a missing one a compile error) and what it holds. */
const FIELDS: Record<keyof LeaseRecord, FieldKind> = {
  id: 'string', purpose: 'purpose', principal: 'string', role: 'string', database: 'string|null',
  username: 'string', userHost: 'string', state: 'state', createdAt: 'integer', expiresAt: 'integer',
  maxExpiresAt: 'integer', updatedAt: 'integer', revokedAt: 'integer|null', revokeReason: 'string|null', owner: 'string',
};

function fits(kind: FieldKind, value: unknown): boolean {
  if (value === null) return kind.endsWith('|null');
  if (kind.startsWith('string')) return typeof value === 'string';
  if (kind.startsWith('integer')) return typeof value === 'number' && Number.isSafeInteger(value);
  if (kind === 'purpose') return value === 'session' || value === 'issued';
  return LEASE_STATES.includes(value as LeaseState);
}

/** Returns what is wrong with a stored record, or null when it is a valid LeaseRecord. */
function recordProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'is not an object';
  for (const [key, kind] of Object.entries(FIELDS)) {
    if (!fits(kind, (value as Record<string, unknown>)[key])) return `has no valid ${key} (${kind})`;
  }
  return null;
}

/** Copies only the known fields, so nothing extra a caller attached is ever persisted. */
function toRecord(r: LeaseRecord): LeaseRecord {
  return Object.fromEntries(Object.keys(FIELDS).map((key) => [key, r[key as keyof LeaseRecord]])) as unknown as LeaseRecord;
}

/** One bad value (a NaN instant) written would make the whole file unreadable, so none is. */
function checked(record: LeaseRecord): LeaseRecord {
  const problem = recordProblem(record);
  if (problem !== null) throw mgError('MG_INTERNAL', `meshgate refused to store lease ${String(record.id)}, which ${problem}; this is a meshgate bug, report it`);
  return toRecord(record);
}

function parseLeaseFile(path: string, text: string): LeaseRecord[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw corrupt(path, text.length === 0 ? 'is empty' : 'is not valid JSON (it may have been cut short)', error);
  }
  const file = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  if (file['version'] !== FILE_VERSION) throw corrupt(path, `has version ${JSON.stringify(file['version'])}, expected ${FILE_VERSION}`);
  const leases = file['leases'];
  if (!Array.isArray(leases)) throw corrupt(path, 'has no leases list');
  const ids = new Set<string>();
  return leases.map((entry: unknown, index) => {
    const problem = recordProblem(entry);
    if (problem !== null) throw corrupt(path, `has a lease (entry ${index}) that ${problem}`);
    const record = toRecord(entry as LeaseRecord);
    if (ids.has(record.id)) throw corrupt(path, `lists lease ${record.id} twice`);
    ids.add(record.id);
    return record;
  });
}

function serialize(leases: readonly LeaseRecord[]): string {
  // One lease per line: an operator can read and grep the file.
  const lines = leases.map((lease) => JSON.stringify(lease));
  return `{"version":${FILE_VERSION},"leases":[\n${lines.join(',\n')}\n]}\n`;
}

function matchesFilter(lease: LeaseRecord, filter: LeaseFilter): boolean {
  if (filter.states !== undefined && !filter.states.includes(lease.state)) return false;
  if (filter.principal !== undefined && lease.principal !== filter.principal) return false;
  if (filter.role !== undefined && lease.role !== filter.role) return false;
  if (filter.purpose !== undefined && lease.purpose !== filter.purpose) return false;
  if (filter.expiresBefore !== undefined && !(lease.expiresAt < filter.expiresBefore)) return false;
  if (filter.updatedBefore !== undefined && !(lease.updatedAt < filter.updatedBefore)) return false;
  return true;
}

function byCreatedAt(a: LeaseRecord, b: LeaseRecord): number {
  return a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

class EmbeddedStore implements StateStore {
  readonly kind = 'embedded' as const;
  readonly location: string;
  private readonly file: string;
  /** Operations of this instance queue here first, so they do not poll the lock file against each other. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly dir: string,
    private readonly owner: string,
    private readonly now: () => number,
    private readonly lockTimeoutMs: number,
  ) {
    this.location = dir;
    this.file = join(dir, LEASES_FILE);
  }

  async createLease(record: LeaseRecord): Promise<void> {
    await this.update((leases) => {
      if (leases.some((lease) => lease.id === record.id)) {
        throw mgError('MG_STORE_CONFLICT', `lease ${record.id} already exists in ${this.file}; retry with a new lease id`);
      }
      return { leases: [...leases, checked(record)], result: undefined };
    });
  }

  async getLease(id: string): Promise<LeaseRecord | null> {
    return (await this.read()).find((lease) => lease.id === id) ?? null;
  }

  async listLeases(filter: LeaseFilter = {}): Promise<LeaseRecord[]> {
    return (await this.read()).filter((lease) => matchesFilter(lease, filter)).sort(byCreatedAt);
  }

  async transitionLease(
    id: string,
    from: readonly LeaseState[],
    to: LeaseState,
    patch: LeasePatch = {},
    options: { readonly updatedBefore?: number } = {},
  ): Promise<LeaseRecord | null> {
    return this.update((leases) => {
      const index = leases.findIndex((lease) => lease.id === id);
      const current = leases[index];
      if (current === undefined || !from.includes(current.state)) return { result: null };
      if (options.updatedBefore !== undefined && !(current.updatedAt < options.updatedBefore)) return { result: null };
      const next: Record<string, unknown> = { ...current, state: to, owner: this.owner, updatedAt: this.now() };
      // Only keys the patch actually sets: `{ revokedAt: undefined }` must not erase anything.
      for (const key of PATCH_KEYS) if (patch[key] !== undefined) next[key] = patch[key];
      const updated = checked(next as unknown as LeaseRecord);
      const copy = [...leases];
      copy[index] = updated;
      return { leases: copy, result: updated };
    });
  }

  async pruneRevoked(before: number): Promise<number> {
    return this.update((leases) => {
      const kept = leases.filter((lease) => !(lease.state === 'revoked' && (lease.revokedAt ?? lease.updatedAt) < before));
      const removed = leases.length - kept.length;
      return removed === 0 ? { result: 0 } : { leases: kept, result: removed };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
  }

  /** Reads need no lock: the file is only ever replaced by rename, so a reader sees a whole version. */
  private async read(): Promise<LeaseRecord[]> {
    this.assertOpen();
    return this.load();
  }

  private async load(): Promise<LeaseRecord[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return [];
      throw unavailable(`cannot read the state file ${this.file} (${reason(error)}); check that it is readable by the user meshgate runs as`, error);
    }
    return parseLeaseFile(this.file, text);
  }

  /** Runs `change` on the current leases under the lock; writes only when it returns new leases. */
  private update<T>(change: (leases: readonly LeaseRecord[]) => { leases?: readonly LeaseRecord[]; result: T }): Promise<T> {
    this.assertOpen();
    const run = async (): Promise<T> => {
      const lock = await acquireLock(this.dir, this.lockTimeoutMs);
      try {
        const { leases, result } = change(await this.load());
        if (leases !== undefined) {
          await writeAtomic(this.file, serialize(leases)).catch((error: unknown) => {
            throw unavailable(`cannot write the state file ${this.file} (${reason(error)}); check free space and that ${this.dir} is writable by the user meshgate runs as`, error);
          });
        }
        return result;
      } finally {
        await releaseLock(lock);
      }
    };
    const result = this.queue.then(run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private assertOpen(): void {
    if (this.closed) throw unavailable(`the state store in ${this.dir} was closed; this is a meshgate bug, report it`);
  }
}

/** Opens (creating when absent) the store kept in `dir`. */
export async function openEmbeddedStore(dir: string, options: EmbeddedStoreOptions = {}): Promise<StateStore> {
  const path = resolve(dir);
  try {
    await mkdir(path, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw unavailable(`cannot create the state directory ${path} (${reason(error)}); create it, owned by the user meshgate runs as, with mode 0700`, error);
  }
  const store = new EmbeddedStore(
    path,
    options.owner ?? `${hostname()}/${process.pid}`,
    options.now ?? Date.now,
    options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
  );
  // Fails now, not at the first lease, when the file is unreadable or corrupt.
  await store.listLeases();
  return store;
}
