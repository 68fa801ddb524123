import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { AUDIT_ANCHORS_FILE, openEmbeddedAnchorStore } from '../../../src/store/anchors-embedded.ts';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { anchor, describeAnchorContract } from '../../helpers/anchor-contract.ts';

const dirs: string[] = [];
async function stateDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-anchors-'));
  dirs.push(dir);
  return join(dir, 'state');
}
after(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describeAnchorContract('embedded', async () => {
  const dir = await stateDir();
  return { open: (options = {}) => openEmbeddedAnchorStore(dir, options) };
});

describe('embedded audit anchor store', () => {
  test('one file beside the leases, readable by meshgate only', async () => {
    const dir = await stateDir();
    const store = await openEmbeddedAnchorStore(dir);
    await store.putAnchor(anchor());
    await store.close();
    const path = join(dir, AUDIT_ANCHORS_FILE);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.match(await readFile(path, 'utf8'), /"seq":100/);
  });

  test('a damaged file is an error, never an empty store', async () => {
    const dir = await stateDir();
    const store = await openEmbeddedAnchorStore(dir);
    await store.putAnchor(anchor());
    await writeFile(join(dir, AUDIT_ANCHORS_FILE), '{"version":1,"anchors":[{"id":');
    await assert.rejects(store.getAnchor(anchor().id), (error: unknown) => isMeshgateError(error) && error.code === 'MG_STORE_UNAVAILABLE' && /not valid JSON/.test(error.message));
    await store.close();
  });
});
