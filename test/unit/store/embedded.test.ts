/**
 * The embedded store: the shared contract, plus what only a file shared by several
 * processes on one host has to get right (locking, atomic replacement, corruption).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LEASES_FILE, LEASES_LOCK_FILE, openEmbeddedStore, type EmbeddedStoreOptions } from '../../../src/store/embedded.ts';
import type { StateStore } from '../../../src/store/types.ts';
import { describeStoreContract, isStoreError, makeLease, T0, type StoreFixture } from '../../helpers/store-contract.ts';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const STORE_MODULE = pathToFileURL(join(REPO_ROOT, 'src/store/embedded.ts')).href;

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-store-'));
  tempDirs.push(dir);
  return dir;
}
after(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function freshFixture(): Promise<StoreFixture & { dir: string; open(options?: EmbeddedStoreOptions): Promise<StateStore> }> {
  const dir = join(await tempDir(), 'state');
  return { dir, open: (options = {}) => openEmbeddedStore(dir, options) };
}

describeStoreContract('embedded', freshFixture);

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

/**
 * A second OS process on the same directory. It starts work only when told, so both
 * processes really run at the same time. `claims`: creates MG_COUNT leases of its own and
 * tries to claim each shared lease, reporting the ids it won. `hammer`: creates leases back
 * to back, with no pause between lock holds, until its stdin ends.
 */
const CHILD_SCRIPT = `
const { openEmbeddedStore } = await import(process.env.MG_STORE_MODULE);
const store = await openEmbeddedStore(process.env.MG_STORE_DIR, { owner: 'child' });
const shared = JSON.parse(process.env.MG_SHARED_IDS);
const count = Number(process.env.MG_COUNT);
const lease = (i) => ({
  id: 'lease_child' + String(i).padStart(18, '0'), purpose: 'session', principal: 'child', role: 'r', database: null,
  username: 'mg_child_' + i, userHost: '%', state: 'active', createdAt: ${T0} + i, expiresAt: ${T0} + i + 1000,
  maxExpiresAt: ${T0} + i + 2000, updatedAt: ${T0} + i, revokedAt: null, revokeReason: null, owner: 'child',
});
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
let stopped = false;
process.stdin.on('end', () => (stopped = true));
const won = [];
let created = 0;
if (process.env.MG_MODE === 'claims') {
  for (; created < count; created++) {
    await store.createLease(lease(created));
    const id = shared[created];
    if (id !== undefined && (await store.transitionLease(id, ['active'], 'revoking')) !== null) won.push(id);
  }
} else {
  for (; !stopped; created++) await store.createLease(lease(created));
}
await store.close();
process.stdout.write(JSON.stringify({ won, created }) + '\\n');
`;

interface ChildReport {
  won: string[];
  created: number;
}

interface Child {
  ready: Promise<void>;
  go(): void;
  stop(): void;
  result: Promise<ChildReport>;
}

function startChild(dir: string, mode: 'claims' | 'hammer', sharedIds: readonly string[] = [], count = 0): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD_SCRIPT], {
    cwd: REPO_ROOT,
    env: { ...process.env, MG_STORE_MODULE: STORE_MODULE, MG_STORE_DIR: dir, MG_MODE: mode, MG_SHARED_IDS: JSON.stringify(sharedIds), MG_COUNT: String(count) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (stdout.startsWith('ready\n')) markReady();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const result = new Promise<ChildReport>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`child exited ${code}: ${stderr}`));
      resolve(JSON.parse(stdout.slice('ready\n'.length)) as ChildReport);
    });
  });
  return {
    // A child that dies before it is ready must fail the test, not hang it.
    ready: Promise.race([ready, result.then(() => undefined)]),
    go: () => child.stdin.write('go\n'),
    stop: () => child.stdin.end(),
    result,
  };
}

describe('embedded store on disk', () => {
  test('creates the directory 0700 and the file 0600, and names the directory as its location', async () => {
    const { dir, open } = await freshFixture();
    const store = await open();
    try {
      assert.equal(store.kind, 'embedded');
      assert.equal(store.location, dir);
      assert.equal(await mode(dir), 0o700);
      await store.createLease(makeLease());
      assert.equal(await mode(join(dir, LEASES_FILE)), 0o600);
      assert.deepEqual((await readdir(dir)).sort(), [LEASES_FILE], 'no lock or temporary file is left behind');
    } finally {
      await store.close();
    }
  });

  test('two instances on one directory interleaving writes lose no update', async () => {
    const { open } = await freshFixture();
    const one = await open({ owner: 'one' });
    const two = await open({ owner: 'two' });
    try {
      const a = makeLease({ createdAt: T0 + 1 });
      const b = makeLease({ createdAt: T0 + 2 });
      await one.createLease(a);
      await two.createLease(b);
      assert.equal((await two.transitionLease(a.id, ['active'], 'revoking'))?.owner, 'two');
      assert.equal((await one.transitionLease(b.id, ['active'], 'revoking'))?.owner, 'one');
      assert.deepEqual((await one.listLeases()).map((l) => [l.id, l.state]), [[a.id, 'revoking'], [b.id, 'revoking']]);

      const burst = Array.from({ length: 60 }, (_, i) => makeLease({ createdAt: T0 + 10 + i }));
      await Promise.all(burst.map((lease, i) => (i % 2 === 0 ? one : two).createLease(lease)));
      assert.equal((await two.listLeases()).length, 62);
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  test('another OS process writing at the same time loses nothing, and each claim has one winner', async () => {
    const { dir, open } = await freshFixture();
    const store = await open({ owner: 'parent' });
    try {
      const count = 30;
      const shared = Array.from({ length: count }, (_, i) => makeLease({ createdAt: T0 - count + i }));
      for (const lease of shared) await store.createLease(lease);
      const child = startChild(dir, 'claims', shared.map((l) => l.id), count);
      await child.ready;
      child.go();
      child.stop();
      const parentWon: string[] = [];
      for (let i = 0; i < count; i++) {
        await store.createLease(makeLease({ id: `lease_parent${String(i).padStart(17, '0')}`, createdAt: T0 + i }));
        const id = shared[count - 1 - i]!.id;
        if ((await store.transitionLease(id, ['active'], 'revoking')) !== null) parentWon.push(id);
      }
      const childWon = (await child.result).won;

      const all = await store.listLeases();
      assert.equal(all.length, 3 * count);
      assert.equal(all.filter((l) => l.owner === 'child' && l.principal === 'child').length, count);
      assert.equal(all.filter((l) => l.id.startsWith('lease_parent')).length, count);
      assert.deepEqual([...parentWon, ...childWon].sort(), shared.map((l) => l.id).sort(), 'every shared lease claimed exactly once');
      assert.equal((await store.listLeases({ states: ['revoking'] })).length, count);
    } finally {
      await store.close();
    }
  });

  test('a process writing back to back cannot starve another out of the lock', async () => {
    const { dir, open } = await freshFixture();
    const child = startChild(dir, 'hammer');
    const store = await open({ lockTimeoutMs: 2_000 });
    try {
      await child.ready;
      child.go();
      while ((await store.listLeases()).length < 20) await sleep(5);
      let slowest = 0;
      for (let i = 0; i < 10; i++) {
        const started = Date.now();
        await store.createLease(makeLease({ createdAt: T0 - i }));
        slowest = Math.max(slowest, Date.now() - started);
      }
      assert.ok(slowest < 1_000, `slowest write took ${slowest} ms`);
    } finally {
      child.stop();
      await store.close();
    }
    const { created } = await child.result;
    const after = await open();
    assert.equal((await after.listLeases()).length, created + 10, 'nothing lost on either side');
    await after.close();
  });

  test('refuses a torn leases.json, naming the file, and never overwrites it', async () => {
    const { dir, open } = await freshFixture();
    const store = await open();
    await store.createLease(makeLease());
    await store.close();
    const file = join(dir, LEASES_FILE);
    const whole = await readFile(file, 'utf8');
    const torn = whole.slice(0, Math.floor(whole.length / 2));
    await writeFile(file, torn);
    const fileNamed = new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}.*not valid JSON.*backup`);
    await assert.rejects(open(), isStoreError('MG_STORE_UNAVAILABLE', fileNamed));

    // A store opened before the damage fails too, on reads and writes alike.
    await writeFile(file, whole);
    const early = await open();
    try {
      await writeFile(file, torn);
      await assert.rejects(early.listLeases(), isStoreError('MG_STORE_UNAVAILABLE', fileNamed));
      await assert.rejects(early.createLease(makeLease()), isStoreError('MG_STORE_UNAVAILABLE', fileNamed));
      assert.equal(await readFile(file, 'utf8'), torn);
    } finally {
      await early.close();
    }
  });

  test('refuses an empty file, a wrong version and a malformed lease', async () => {
    const { dir, open } = await freshFixture();
    const file = join(dir, LEASES_FILE);
    await (await open()).close();
    const cases: [string, RegExp][] = [
      ['', /is empty/],
      ['[]', /has version undefined/],
      ['{"version":2,"leases":[]}', /has version 2, expected 1/],
      ['{"version":1}', /has no leases list/],
      [JSON.stringify({ version: 1, leases: [{ ...makeLease(), state: 'gone' }] }), /entry 0.*no valid state/],
      [JSON.stringify({ version: 1, leases: [{ ...makeLease(), expiresAt: '1' }] }), /entry 0.*no valid expiresAt \(integer\)/],
    ];
    const twice = makeLease();
    cases.push([JSON.stringify({ version: 1, leases: [twice, twice] }), new RegExp(`lists lease ${twice.id} twice`)]);
    for (const [content, problem] of cases) {
      await writeFile(file, content);
      await assert.rejects(open(), isStoreError('MG_STORE_UNAVAILABLE', problem), content);
    }
  });

  test('refuses to write a value that would make the file unreadable', async () => {
    const { open } = await freshFixture();
    const store = await open();
    try {
      const lease = makeLease();
      await store.createLease(lease);
      await assert.rejects(store.createLease(makeLease({ createdAt: Number.NaN })), isStoreError('MG_INTERNAL', /no valid createdAt/));
      await assert.rejects(store.transitionLease(lease.id, ['active'], 'revoked', { revokedAt: 1.5 }), isStoreError('MG_INTERNAL', /no valid revokedAt/));
      assert.deepEqual(await store.listLeases(), [lease]);
    } finally {
      await store.close();
    }
  });

  test('takes over a lock left by a crashed process, but waits out a live one', async () => {
    const { dir, open } = await freshFixture();
    const store = await open({ lockTimeoutMs: 300 });
    try {
      const lock = join(dir, LEASES_LOCK_FILE);
      await writeFile(lock, '999999 crashed\n');
      const started = Date.now();
      await assert.rejects(store.createLease(makeLease()), isStoreError('MG_STORE_UNAVAILABLE', /locked by another process.*leases\.lock.*remove that file/));
      assert.ok(Date.now() - started < 2_000);
      assert.equal((await store.listLeases()).length, 0, 'reads do not need the lock');

      const longAgo = new Date(Date.now() - 60_000);
      await utimes(lock, longAgo, longAgo);
      const lease = makeLease();
      await store.createLease(lease);
      assert.deepEqual(await store.getLease(lease.id), lease);
      assert.deepEqual(await readdir(dir), [LEASES_FILE]);
    } finally {
      await store.close();
    }
  });

  test('works in a directory that already exists and finds leases written before', async () => {
    const dir = await tempDir();
    const lease = makeLease();
    const first = await openEmbeddedStore(dir);
    await first.createLease(lease);
    await first.close();
    const second = await openEmbeddedStore(dir);
    try {
      assert.deepEqual(await second.listLeases(), [lease]);
    } finally {
      await second.close();
    }
  });
});
