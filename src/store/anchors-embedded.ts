/**
 * Audit anchors in the embedded state directory: `audit-anchors.json` beside the leases,
 * written under the same lock and replaced by rename, like the lease file. A file that
 * cannot be parsed is an error, never an empty store: an empty store would make a cut-off
 * log look whole.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeAtomic } from '../fs-atomic.ts';
import { acquireLock, errnoCode, reason, releaseLock, unavailable } from './file-lock.ts';
import { replaces, type AuditAnchor, type AuditAnchorInput, type AuditAnchorStore } from './anchors.ts';

export const AUDIT_ANCHORS_FILE = 'audit-anchors.json';
const FILE_VERSION = 1;
const LOCK_TIMEOUT_MS = 10_000;

export interface EmbeddedAnchorStoreOptions {
  readonly now?: () => number;
}

function anchorProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'is not an object';
  const a = value as Record<string, unknown>;
  for (const key of ['id', 'stream', 'head', 'time'] as const) if (typeof a[key] !== 'string') return `has no ${key}`;
  for (const key of ['file', 'seq', 'updatedAt'] as const) if (!Number.isSafeInteger(a[key])) return `has no ${key}`;
  if (a['checkpoint'] !== null && typeof a['checkpoint'] !== 'string') return 'has a checkpoint that is not text';
  return null;
}

function toAnchor(a: AuditAnchor): AuditAnchor {
  const { id, stream, file, seq, head, time, checkpoint, updatedAt } = a;
  return { id, stream, file, seq, head, time, checkpoint, updatedAt };
}

class EmbeddedAnchorStore implements AuditAnchorStore {
  readonly location: string;
  private readonly file: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dir: string,
    private readonly now: () => number,
  ) {
    this.location = dir;
    this.file = join(dir, AUDIT_ANCHORS_FILE);
  }

  async getAnchor(id: string): Promise<AuditAnchor | null> {
    return (await this.load()).find((a) => a.id === id) ?? null;
  }

  async listAnchors(): Promise<AuditAnchor[]> {
    return (await this.load()).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  putAnchor(anchor: AuditAnchorInput, options: { readonly supersede?: boolean } = {}): Promise<boolean> {
    const run = async (): Promise<boolean> => {
      const lock = await acquireLock(this.dir, LOCK_TIMEOUT_MS);
      try {
        const anchors = await this.load();
        const index = anchors.findIndex((a) => a.id === anchor.id);
        if (!replaces(anchors[index] ?? null, anchor, options.supersede === true)) return false;
        const next = toAnchor({ ...anchor, updatedAt: this.now() });
        if (index === -1) anchors.push(next);
        else anchors[index] = next;
        const text = `{"version":${FILE_VERSION},"anchors":[\n${anchors.map((a) => JSON.stringify(a)).join(',\n')}\n]}\n`;
        await writeAtomic(this.file, text).catch((error: unknown) => {
          throw unavailable(`cannot write the audit anchors file ${this.file} (${reason(error)}); check free space and that ${this.dir} is writable by the user meshgate runs as`, error);
        });
        return true;
      } finally {
        await releaseLock(lock);
      }
    };
    const result = this.queue.then(run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  async close(): Promise<void> {
    await this.queue;
  }

  private async load(): Promise<AuditAnchor[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return [];
      throw unavailable(`cannot read the audit anchors file ${this.file} (${reason(error)}); check that it is readable by the user meshgate runs as`, error);
    }
    const corrupt = (problem: string, cause?: unknown) =>
      unavailable(`the audit anchors file ${this.file} ${problem}; restore it from a backup (without it a cut-off audit log cannot be told from a whole one), or move it aside to start anchoring afresh`, cause);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw corrupt('is not valid JSON (it may have been cut short)', error);
    }
    const file = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
    if (file['version'] !== FILE_VERSION) throw corrupt(`has version ${JSON.stringify(file['version'])}, expected ${FILE_VERSION}`);
    if (!Array.isArray(file['anchors'])) throw corrupt('has no anchors list');
    return (file['anchors'] as unknown[]).map((entry, i) => {
      const problem = anchorProblem(entry);
      if (problem !== null) throw corrupt(`has an anchor (entry ${i}) that ${problem}`);
      return toAnchor(entry as AuditAnchor);
    });
  }
}

/** Opens (creating the directory when absent) the anchors kept in the state directory `dir`. */
export async function openEmbeddedAnchorStore(dir: string, options: EmbeddedAnchorStoreOptions = {}): Promise<AuditAnchorStore> {
  const path = resolve(dir);
  try {
    await mkdir(path, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw unavailable(`cannot create the state directory ${path} (${reason(error)}); create it, owned by the user meshgate runs as, with mode 0700`, error);
  }
  const store = new EmbeddedAnchorStore(path, options.now ?? Date.now);
  await store.listAnchors();
  return store;
}
