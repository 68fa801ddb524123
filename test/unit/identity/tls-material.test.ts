import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';
import { isMeshgateError, type MeshgateError } from '../../../src/errors/index.ts';
import { initCa, issueServerCert } from '../../../src/identity/ca.ts';
import { watchTlsMaterial, type TlsMaterial, type TlsMaterialChange, type TlsMaterialOptions } from '../../../src/identity/tls-material.ts';
import { makeTempDir, makeTestCa } from '../../helpers/certs.ts';

interface Pair {
  readonly cert: string;
  readonly key: string;
  readonly fingerprint: string;
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The fingerprint of the certificate a TLS client sees when the server uses material.secureContext(). */
async function servedFingerprint(material: TlsMaterial, ca: Buffer): Promise<string> {
  const server = createServer({ SNICallback: (_name, cb) => cb(null, material.secureContext()) }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca }, () => {
        resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
        socket.end();
      });
      socket.on('error', reject);
    });
  } finally {
    server.close();
  }
}

describe('watchTlsMaterial', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let a: Pair;
  let b: Pair;
  let bundle: string;
  let istioRoot: string;
  const open: TlsMaterial[] = [];
  let n = 0;

  before(async () => {
    ({ dir: root, cleanup } = await makeTempDir());
    const caDir = join(root, 'ca');
    await initCa({ dir: caDir, trustDomain: 'example.org' });
    const pair = async (name: string): Promise<Pair> => {
      const issued = await issueServerCert({ caDir, outDir: join(root, 'src'), name });
      const cert = await readFile(issued.certPath, 'utf8');
      return { cert, key: await readFile(issued.keyPath, 'utf8'), fingerprint: new X509Certificate(cert).fingerprint256 };
    };
    a = await pair('a');
    b = await pair('b');
    bundle = await readFile(join(caDir, 'bundle.pem'), 'utf8');
    istioRoot = (await makeTestCa('cluster.local')).pem;
  });
  after(async () => {
    for (const material of open) material.close();
    await cleanup();
  });

  /** A directory holding tls.crt/tls.key (pair a), bundle.pem and istio-root.pem. */
  async function setup(overrides: Partial<TlsMaterialOptions> = {}) {
    const dir = join(root, `t${++n}`);
    await mkdir(dir);
    await writeFile(join(dir, 'tls.crt'), a.cert);
    await writeFile(join(dir, 'tls.key'), a.key);
    await writeFile(join(dir, 'bundle.pem'), bundle.trimEnd()); // no trailing newline: concatenation must add one
    await writeFile(join(dir, 'istio-root.pem'), istioRoot);
    const changes: TlsMaterialChange[] = [];
    const errors: MeshgateError[] = [];
    const material = await watchTlsMaterial({
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      bundleFiles: [join(dir, 'bundle.pem'), join(dir, 'istio-root.pem')],
      onChange: (c) => changes.push(c),
      onError: (e) => errors.push(e),
      debounceMs: 30,
      pollIntervalMs: 200,
      ...overrides,
    });
    open.push(material);
    return { dir, material, changes, errors };
  }

  it('serves the certificate and concatenates the bundles in order', async () => {
    const { material } = await setup();
    assert.equal(material.bundlePem().toString(), `${bundle.trimEnd()}\n${istioRoot.trimEnd()}\n`);
    assert.equal(await servedFingerprint(material, material.bundlePem()), a.fingerprint);
  });

  it('reloads a file rewritten in place', async () => {
    const { dir, material, changes } = await setup();
    const before = material.secureContext();
    await writeFile(join(dir, 'tls.key'), b.key);
    await writeFile(join(dir, 'tls.crt'), b.cert);
    await waitFor('reload', () => changes.at(-1)?.certificate.fingerprint256 === b.fingerprint);
    assert.notEqual(material.secureContext(), before);
    assert.equal(changes.at(-1)?.bundleCertificates, 2);
    assert.equal(await servedFingerprint(material, material.bundlePem()), b.fingerprint);
  });

  it('reloads files replaced by rename', async () => {
    const { dir, changes } = await setup();
    await writeFile(join(dir, '.tls.key.tmp'), b.key);
    await writeFile(join(dir, '.tls.crt.tmp'), b.cert);
    await rename(join(dir, '.tls.key.tmp'), join(dir, 'tls.key'));
    await rename(join(dir, '.tls.crt.tmp'), join(dir, 'tls.crt'));
    await waitFor('reload', () => changes.at(-1)?.certificate.fingerprint256 === b.fingerprint);
  });

  it('follows a Kubernetes secret volume (..data symlink swapped by rename)', async () => {
    const dir = join(root, 'k8s');
    await mkdir(join(dir, '..v1'), { recursive: true });
    await mkdir(join(dir, '..v2'));
    for (const [version, pair] of [['..v1', a], ['..v2', b]] as const) {
      await writeFile(join(dir, version, 'tls.crt'), pair.cert);
      await writeFile(join(dir, version, 'tls.key'), pair.key);
      await writeFile(join(dir, version, 'ca.crt'), bundle);
    }
    await symlink('..v1', join(dir, '..data'));
    for (const file of ['tls.crt', 'tls.key', 'ca.crt']) await symlink(join('..data', file), join(dir, file));
    const changes: TlsMaterialChange[] = [];
    const material = await watchTlsMaterial({
      certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), bundleFiles: [join(dir, 'ca.crt')],
      onChange: (c) => changes.push(c), debounceMs: 30, pollIntervalMs: 60_000,
    });
    open.push(material);
    await symlink('..v2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await waitFor('reload through fs.watch', () => changes.at(-1)?.certificate.fingerprint256 === b.fingerprint);
  });

  it('keeps the previous context through a broken write, and reports it once', async () => {
    const { dir, material, changes, errors } = await setup();
    const before = material.secureContext();
    await writeFile(join(dir, 'tls.crt'), a.cert.slice(0, 200));
    await waitFor('error', () => errors.length > 0);
    assert.ok(errors.every(isMeshgateError));
    assert.equal(errors[0]?.code, 'MG_TLS_MATERIAL_INVALID');
    assert.match(errors[0]?.message ?? '', /tls\.crt does not hold complete PEM certificates/);
    assert.equal(material.secureContext(), before);
    assert.equal(await material.reload(), false);
    const reported = errors.length; // 1, or 2 if the watcher also saw the truncated, empty file
    await new Promise((r) => setTimeout(r, 450)); // two polls over the same broken content
    assert.equal(errors.length, reported, 'the same broken content is reported once');
    assert.equal(changes.length, 0);
    await writeFile(join(dir, 'tls.key'), b.key);
    await writeFile(join(dir, 'tls.crt'), b.cert);
    await waitFor('recovery', () => changes.at(-1)?.certificate.fingerprint256 === b.fingerprint);
  });

  it('refuses a key that belongs to another certificate, and a broken bundle', async () => {
    const { dir, material, errors } = await setup({ watch: false, pollIntervalMs: 60_000 });
    const before = material.secureContext();
    await writeFile(join(dir, 'tls.crt'), b.cert);
    assert.equal(await material.reload(), false);
    assert.match(errors.at(-1)?.message ?? '', /tls\.key is not the private key of .*tls\.crt/);
    await writeFile(join(dir, 'tls.crt'), a.cert);
    await writeFile(join(dir, 'istio-root.pem'), `${istioRoot}-----BEGIN CERTIFICATE-----\nMIIB`);
    assert.equal(await material.reload(), false);
    assert.match(errors.at(-1)?.message ?? '', /istio-root\.pem does not hold complete PEM certificates/);
    await rm(join(dir, 'bundle.pem'));
    assert.equal(await material.reload(), false);
    assert.match(errors.at(-1)?.message ?? '', /cannot read .*bundle\.pem: ENOENT/);
    assert.equal(material.secureContext(), before);
  });

  it('notices changes by polling alone', async () => {
    const { dir, changes } = await setup({ watch: false, pollIntervalMs: 40 });
    await writeFile(join(dir, 'tls.key'), b.key);
    await writeFile(join(dir, 'tls.crt'), b.cert);
    await waitFor('poll', () => changes.at(-1)?.certificate.fingerprint256 === b.fingerprint);
  });

  it('rejects material that does not load at start', async () => {
    const { dir } = await setup();
    const options = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), bundleFiles: [join(dir, 'bundle.pem')] };
    await writeFile(join(dir, 'tls.key'), b.key);
    await assert.rejects(watchTlsMaterial(options), (e: unknown) => isMeshgateError(e) && e.code === 'MG_TLS_MATERIAL_INVALID');
    await assert.rejects(watchTlsMaterial({ ...options, certFile: join(dir, 'nope.crt') }), /cannot read .*nope\.crt: ENOENT/);
    await assert.rejects(watchTlsMaterial({ ...options, bundleFiles: [] }), TypeError);
  });

  it('stops after close()', async () => {
    const { dir, material, changes, errors } = await setup({ pollIntervalMs: 20 });
    material.close();
    await writeFile(join(dir, 'tls.key'), b.key);
    await writeFile(join(dir, 'tls.crt'), b.cert);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual([changes.length, errors.length], [0, 0]);
  });

  it('leaves nothing that keeps a process alive after close()', async () => {
    const dir = join(root, 't1');
    const script = [
      `import { watchTlsMaterial } from ${JSON.stringify(new URL('../../../src/identity/tls-material.ts', import.meta.url).pathname)};`,
      `const m = await watchTlsMaterial({ certFile: ${JSON.stringify(join(dir, 'tls.crt'))}, keyFile: ${JSON.stringify(join(dir, 'tls.key'))}, bundleFiles: [${JSON.stringify(join(dir, 'bundle.pem'))}] });`,
      'm.close();',
      // After a turn of the loop, so the watchers' close requests have completed; stdio pipes are the test's own.
      "setImmediate(() => console.log(process.getActiveResourcesInfo().filter((r) => !['TTYWrap', 'PipeWrap'].includes(r)).join(',') || 'none'));",
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill(), 10_000);
      child.on('exit', (c) => (clearTimeout(timer), resolve(c)));
    });
    assert.equal(code, 0, 'the process must exit by itself');
    assert.equal(out.trim(), 'none');
  });
});
