/**
 * The embedded store's lock: a file created with O_EXCL, taken over when stale, and a
 * second "next turn" file so a waiter beside a busy writer is not starved. Every operation
 * of the store holds it for milliseconds.
 */
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { link, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hostname } from 'node:os';
import { isMeshgateError, mgError, type MeshgateError } from '../errors/index.ts';

export const LEASES_LOCK_FILE = 'leases.lock';
/** A starved waiter's claim on the next turn (see acquireLock). */
export const LEASES_TURN_FILE = 'leases.lock.next';
/** Every operation holds the lock for milliseconds; a lock this old has no live holder. */
const STALE_LOCK_MS = 30_000;
/** A turn claim lives only while its waiter polls; one this old was left by a crash. */
const STALE_TURN_MS = 2_000;
const STARVED_MS = 50;
const RETRY_MIN_MS = 5;
const RETRY_JITTER_MS = 15;

export function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

export function reason(error: unknown): string {
  return errnoCode(error) ?? String(error);
}

export function unavailable(message: string, cause?: unknown): MeshgateError {
  return mgError('MG_STORE_UNAVAILABLE', message, cause);
}

export interface HeldLock {
  readonly path: string;
  readonly ino: number;
}

async function tryCreateLock(path: string): Promise<HeldLock | null> {
  let handle;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return null;
    throw error;
  }
  try {
    await handle.writeFile(`${process.pid} ${hostname()} ${new Date().toISOString()}\n`);
    return { path, ino: (await handle.stat()).ino };
  } catch (error) {
    // Nobody else can hold a lock created a moment ago with O_EXCL; left behind, it would block all for STALE_LOCK_MS.
    await rm(path, { force: true });
    throw error;
  } finally {
    await handle.close();
  }
}

async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await stat(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return null;
    throw error;
  }
}

async function isFresh(path: string, maxAgeMs: number): Promise<boolean> {
  const info = await statOrNull(path);
  return info !== null && Date.now() - info.mtimeMs <= maxAgeMs;
}

/**
 * Moves a stale lock aside rather than deleting it: two waiters can both see the same stale
 * lock, and a plain delete by the slower one would remove the lock the faster one has just
 * taken. A rename moves exactly one file, and the inode check tells whether it was the stale
 * one; a live lock moved by mistake is linked back.
 */
async function takeOverIfStale(path: string, staleMs: number): Promise<void> {
  const observed = await statOrNull(path);
  if (observed === null || Date.now() - observed.mtimeMs <= staleMs) return;
  const aside = `${path}.${randomBytes(6).toString('hex')}.stale`;
  try {
    await rename(path, aside);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  try {
    const moved = await stat(aside);
    if (moved.ino !== observed.ino || moved.mtimeMs !== observed.mtimeMs) {
      await link(aside, path).catch((error: unknown) => {
        if (errnoCode(error) !== 'EEXIST') throw error;
      });
    }
  } finally {
    await rm(aside, { force: true });
  }
}

export async function releaseLock(lock: HeldLock): Promise<void> {
  // A holder slower than the stale limit may have been taken over; the file is then someone else's.
  if ((await statOrNull(lock.path))?.ino === lock.ino) await rm(lock.path, { force: true });
}

/**
 * Polling alone is unfair: a process writing back to back re-takes the lock microseconds
 * after releasing it, and a poller (a CLI command beside a busy server) could wait out its
 * whole timeout. So a waiter that has waited STARVED_MS claims the next turn with a second
 * O_EXCL file, and everyone else leaves the lock alone while that claim is fresh.
 * The lock uses the real clock even when the store is given `now`: staleness is about live processes.
 */
export async function acquireLock(dir: string, timeoutMs: number): Promise<HeldLock> {
  const path = join(dir, LEASES_LOCK_FILE);
  const turnPath = join(dir, LEASES_TURN_FILE);
  const started = Date.now();
  let turn: HeldLock | null = null;
  try {
    for (;;) {
      if (turn !== null || !(await isFresh(turnPath, STALE_TURN_MS))) {
        const lock = await tryCreateLock(path);
        if (lock !== null) return lock;
      }
      await takeOverIfStale(path, STALE_LOCK_MS);
      if (turn === null && Date.now() - started >= STARVED_MS) {
        await takeOverIfStale(turnPath, STALE_TURN_MS);
        turn = await tryCreateLock(turnPath);
      }
      if (Date.now() - started >= timeoutMs) {
        throw unavailable(
          `the state store in ${dir} stayed locked by another process for ${timeoutMs} ms (${path}); ` +
            'retry, and if no meshgate process is running on this host, remove that file',
        );
      }
      // Jitter keeps processes that wait together from retrying in lockstep.
      await sleep(RETRY_MIN_MS + Math.floor(Math.random() * RETRY_JITTER_MS));
    }
  } catch (error) {
    if (isMeshgateError(error)) throw error;
    throw unavailable(`cannot take the lock ${path} (${reason(error)}); check that ${dir} is writable by the user meshgate runs as`, error);
  } finally {
    if (turn !== null) await releaseLock(turn).catch(() => undefined);
  }
}
