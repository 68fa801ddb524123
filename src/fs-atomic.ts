/**
 * Files that must be whole after a crash or a power loss: the state store's files, the audit
 * anchors, an audit log's new active file, the admin password after a rotation.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Makes a rename or a new file in `dir` survive a power loss. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Creates or replaces `path` with `content`, whole or not at all: a temp file beside it
 * (0600: these files hold leases, anchors and audit events), synced, renamed into place,
 * then the directory synced. A reader sees the old version or the new one, never a part.
 */
export async function writeAtomic(path: string, content: string): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDir(dirname(path));
}
