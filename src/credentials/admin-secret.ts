/**
 * meshgate's own MariaDB admin password: read from where the config says, rotated in
 * place, never printed. Rotation writes the new password beside the old file first, then
 * changes it in MariaDB, then renames it over the old one; a crash between the last two
 * steps leaves both files, and the next start keeps whichever one MariaDB accepts.
 */
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { readSecret } from '../config/load.ts';
import type { SecretRef } from '../config/schema.ts';
import { mgError } from '../errors/index.ts';
import { syncDir } from '../fs-atomic.ts';
import { randomPassword } from './account-names.ts';
import type { MariadbAccounts } from './types.ts';

export const PENDING_SUFFIX = '.pending';

export async function readAdminPassword(
  ref: SecretRef,
  env: NodeJS.ProcessEnv,
  canLogIn: (password: string) => Promise<boolean>,
): Promise<string> {
  const current = readSecret(ref, 'upstream.credentials.admin.password', env);
  if (!('file' in ref)) return current;
  const pendingFile = ref.file + PENDING_SUFFIX;
  const pending = await readFile(pendingFile, 'utf8').then(
    (text) => text.replace(/\r?\n$/, ''),
    () => null,
  );
  if (pending === null) return current;
  if (await canLogIn(current)) {
    await rm(pendingFile, { force: true });
    return current;
  }
  if (await canLogIn(pending)) {
    await rename(pendingFile, ref.file);
    await syncDir(dirname(ref.file));
    return pending;
  }
  throw mgError(
    'MG_UPSTREAM_AUTH_FAILED',
    `MariaDB accepts neither the admin password in ${ref.file} nor the one a rotation left in ${pendingFile}; set the account's password by hand and write it to ${ref.file}`,
  );
}

export async function rotateAdminPassword(file: string, accounts: MariadbAccounts): Promise<void> {
  const next = randomPassword();
  const pendingFile = file + PENDING_SUFFIX;
  await writeDurably(pendingFile, next + '\n');
  try {
    await accounts.changeAdminPassword(next);
  } catch (error) {
    // MariaDB still has the old password, which the file holds: forget the new one.
    await rm(pendingFile, { force: true });
    throw error;
  }
  await rename(pendingFile, file);
  await syncDir(dirname(file));
}

async function writeDurably(path: string, text: string): Promise<void> {
  const handle = await open(path, 'w', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
