/**
 * A crash in the middle of an append leaves the audit file ending in part of a line. Starting
 * must not stop there (nor silently drop the bytes): the partial line is copied to a file of
 * its own beside the audit file, synced, and cut from the audit file, and the sink chains a
 * `recovered` event that names the copy, its size and hash, and the seq it would have had.
 * Only a partial *last* line is a crash's signature; an edited or broken complete line is
 * not, and readChainTail still refuses to extend it.
 */
import * as crypto from 'node:crypto';
import { open } from 'node:fs/promises';
import { mgError } from '../errors/index.ts';
import { linesBackward } from './lines.ts';

export interface TornTail {
  readonly bytes: number;
  readonly sha256: string;
  /** Where the partial line now is. */
  readonly setAside: string;
  /** The event type the partial line starts with, when that much of it was written. */
  readonly type: string | null;
}

/** Sets a partial last line aside; null when the file is missing, empty or ends cleanly. */
export async function setTornTailAside(path: string, now: Date = new Date()): Promise<TornTail | null> {
  let last;
  try {
    for await (const line of linesBackward(path)) {
      last = line;
      break;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw mgError('MG_AUDIT_UNAVAILABLE', `cannot read the audit file ${path} (${(error as NodeJS.ErrnoException).code ?? 'unknown error'})`, error);
  }
  if (last === undefined || last.terminated) return null;
  const torn = last.bytes;
  const setAside = `${path}.torn-${now.toISOString().replace(/[:.]/g, '-')}`;
  try {
    // 'wx': never overwrite an earlier copy; the copy is durable before the file is cut.
    const copy = await open(setAside, 'wx', 0o600);
    try {
      await copy.writeFile(torn);
      await copy.datasync();
    } finally {
      await copy.close();
    }
    const file = await open(path, 'r+');
    try {
      const { size } = await file.stat();
      await file.truncate(size - torn.length);
      await file.datasync();
    } finally {
      await file.close();
    }
  } catch (error) {
    throw mgError('MG_AUDIT_UNAVAILABLE', `the audit file ${path} ends in a partial line that could not be set aside to ${setAside} (${(error as NodeJS.ErrnoException).code ?? String(error)})`, error);
  }
  const type = /^\{"type":"([a-z_]{1,32})"/.exec(torn.toString('latin1', 0, 48))?.[1] ?? null;
  return { bytes: torn.length, sha256: crypto.createHash('sha256').update(torn).digest('hex'), setAside, type };
}
