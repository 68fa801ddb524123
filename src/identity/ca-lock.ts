/**
 * One writer at a time for a CA directory. Issuance updates ca.json (read, add the new
 * notAfter, write) and rotation rewrites every file; two `meshgate ca` processes, or an
 * agent renewing while an operator rotates, would otherwise lose an update, and a lost
 * notAfter means a root pruned while certificates it signed are still in use.
 *
 * The lock is a file created with O_EXCL. A holder that crashed leaves it behind; after
 * STALE_MS it is taken over (issuance and rotation take milliseconds, so a lock that old
 * has no live holder). The lock uses the real clock even when callers inject `now`.
 */
import { open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { mgError } from '../errors/index.ts';

export const CA_LOCK_FILE = 'ca.lock';
const STALE_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 10_000;
const RETRY_MS = 20;

export interface CaLockOptions {
  readonly timeoutMs?: number;
}

async function tryAcquire(path: string): Promise<boolean> {
  try {
    const handle = await open(path, 'wx', 0o600);
    try {
      await handle.writeFile(`${process.pid} ${new Date().toISOString()}\n`);
    } finally {
      await handle.close();
    }
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

async function removeIfStale(path: string): Promise<void> {
  try {
    const info = await stat(path);
    if (Date.now() - info.mtimeMs > STALE_MS) await rm(path, { force: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Runs `fn` holding the lock of the CA in `dir` (which must exist); always releases it. */
export async function withCaLock<T>(dir: string, fn: () => Promise<T>, options: CaLockOptions = {}): Promise<T> {
  const path = join(dir, CA_LOCK_FILE);
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  while (!(await tryAcquire(path))) {
    await removeIfStale(path);
    if (Date.now() >= deadline) {
      throw mgError(
        'MG_CA_BUSY',
        `the CA in ${dir} is locked by another process (${path}); wait for it to finish, or remove the file if no meshgate ca command is running`,
      );
    }
    await sleep(RETRY_MS);
  }
  try {
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}
