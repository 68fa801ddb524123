/**
 * A small tmpfs of its own, for the disk-full cases: `mount -t tmpfs -o size=…`, which needs
 * root. Where mounting is not permitted the suite skips saying so, unless
 * MESHGATE_TEST_REQUIRE names `tmpfs`; then it fails with the same message.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, open, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isRequired } from './services.ts';

const run = promisify(execFile);

export interface SmallDisk {
  readonly dir: string;
  /** Takes every free block with a filler file. */
  fill(): Promise<void>;
  /** Gives the filler's blocks back. */
  free(): Promise<void>;
  unmount(): Promise<void>;
}

/** A mounted tmpfs of `size` (mount's syntax, e.g. '1m'), or the reason it cannot be had. */
export async function smallDisk(size: string): Promise<SmallDisk | string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-smalldisk-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  } catch (error) {
    await rmdir(dir).catch(() => undefined);
    const reason = `needs to mount a ${size} tmpfs for the disk-full case, which failed (${(error as Error).message.split('\n')[0]}); run as root`;
    if (isRequired('tmpfs')) throw new Error(`MESHGATE_TEST_REQUIRE names tmpfs, but this suite ${reason}`);
    return reason;
  }
  const filler = join(dir, 'filler');
  let unmounted = false;
  return {
    dir,
    async fill() {
      const file = await open(filler, 'a');
      try {
        const block = Buffer.alloc(4096, 0x78);
        for (;;) {
          try {
            await file.write(block);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === 'ENOSPC') return;
            throw error;
          }
        }
      } finally {
        await file.close();
      }
    },
    free: () => rm(filler, { force: true }),
    async unmount() {
      if (unmounted) return;
      unmounted = true;
      // lazy: a process a failed test left holding a file must not keep the mount.
      await run('umount', ['-l', dir]).catch(() => undefined);
      await rmdir(dir).catch(() => undefined);
    },
  };
}
