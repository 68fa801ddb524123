/**
 * The admin password rotated by another process (`meshgate creds rotate-root` beside a
 * running server): the file changes, MariaDB changes, and a process still holding the old
 * password follows the file at its next login instead of losing MariaDB.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readAdminPassword, rotateAdminPassword, PENDING_SUFFIX } from '../../../src/credentials/admin-secret.ts';
import { openMariadbAccounts } from '../../../src/credentials/mariadb-accounts.ts';
import { makeTempDir } from '../../helpers/certs.ts';
import { createAdminAccount, MARIADB } from '../../helpers/meshgate.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

describe('admin password rotation across processes', { skip: missing }, () => {
  const user = `mgt_rot_admin_${process.pid}`;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let file: string;
  let drop: () => Promise<void>;
  let original: string;

  before(async () => {
    tmp = await makeTempDir('meshgate-rotation-');
    const admin = await createAdminAccount(user, []);
    drop = admin.drop;
    original = admin.password;
    file = join(tmp.dir, 'admin');
    await writeFile(file, original + '\n', { mode: 0o600 });
  });
  after(async () => {
    await cleanup(
      () => drop?.(),
      () => tmp?.cleanup(),
    );
  });

  const open = (password: string) =>
    openMariadbAccounts({ ...MARIADB, user, password, rereadPassword: async () => (await readFile(file, 'utf8')).trim(), retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });

  it('a process that still holds the old password re-reads the file when MariaDB refuses it', async () => {
    const rotator = open(original);
    await rotateAdminPassword(file, rotator);
    const rotated = (await readFile(file, 'utf8')).trim();
    assert.notEqual(rotated, original);
    await rotator.close();

    const stale = open(original); // like a server started before the rotation
    try {
      assert.equal(await stale.roleExists('no_such_role'), false);
    } finally {
      await stale.close();
    }
    const withoutReread = openMariadbAccounts({ ...MARIADB, user, password: original, retry: { attempts: 1, baseDelayMs: 10, maxDelayMs: 10 } });
    await assert.rejects(withoutReread.roleExists('x'), (error: Error & { code?: string }) => error.code === 'MG_UPSTREAM_AUTH_FAILED' && !error.message.includes(original));
    await withoutReread.close();
  });

  it('a rotation interrupted after MariaDB changed keeps the password MariaDB accepts', async () => {
    const current = (await readFile(file, 'utf8')).trim();
    const accounts = open(current);
    await accounts.changeAdminPassword('interrupted-' + process.pid); // MariaDB has it; the file does not
    await accounts.close();
    await writeFile(file + PENDING_SUFFIX, 'interrupted-' + process.pid + '\n', { mode: 0o600 });
    const probe = async (password: string) => {
      const a = openMariadbAccounts({ ...MARIADB, user, password, retry: { attempts: 1, baseDelayMs: 10, maxDelayMs: 10 } });
      try {
        await a.roleExists('x');
        return true;
      } catch {
        return false;
      } finally {
        await a.close();
      }
    };
    const chosen = await readAdminPassword({ file }, process.env, probe);
    assert.equal(chosen, 'interrupted-' + process.pid);
    assert.equal((await readFile(file, 'utf8')).trim(), chosen, 'the pending file replaced the old one');
  });
});
