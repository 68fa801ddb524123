import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import { caCommands } from '../../../src/cli/commands/ca.ts';
import type { CliIO, OptionValues } from '../../../src/cli/command.ts';
import { isMeshgateError, type ErrorCode } from '../../../src/errors/index.ts';
import { initCa, issueServerCert, issueSvid, loadCa } from '../../../src/identity/ca.ts';
import { DEFAULT_SVID_TTL_SECONDS } from '../../../src/identity/ca-issue.ts';
import type { CaMetadata } from '../../../src/identity/ca-records.ts';
import { pruneCa, rotateCa } from '../../../src/identity/rotation.ts';
import { DAY_MS, HOUR_MS, makeOddLeaf, makeTempDir, makeTestCa } from '../../helpers/certs.ts';

const run = promisify(execFile);
const ID = 'spiffe://example.org/ns/shop/sa/orders';

/** `openssl verify -CAfile bundle leaf`: true when OpenSSL accepts the chain. */
async function opensslAccepts(bundle: string, leaf: string): Promise<boolean> {
  try {
    const { stdout } = await run('openssl', ['verify', '-CAfile', bundle, leaf]);
    return /: OK$/m.test(stdout);
  } catch {
    return false;
  }
}

function certsIn(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((b) => new X509Certificate(b));
}

async function metadata(dir: string): Promise<CaMetadata> {
  return JSON.parse(await readFile(join(dir, 'ca.json'), 'utf8')) as CaMetadata;
}

function isCode(code: ErrorCode, message?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(isMeshgateError(error), String(error));
    assert.equal(error.code, code, error.message);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  };
}

describe('CA rotation', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let n = 0;
  const fresh = async (): Promise<string> => {
    const dir = join(root, `ca${++n}`);
    await initCa({ dir, trustDomain: 'example.org', ttlDays: 30 });
    return dir;
  };
  before(async () => ({ dir: root, cleanup } = await makeTempDir()));
  after(() => cleanup());

  it('makes a new root the issuer; openssl accepts both roots during the overlap', async () => {
    const dir = await fresh();
    const oldCert = await readFile(join(dir, 'ca.crt'), 'utf8');
    const oldKey = await readFile(join(dir, 'ca.key'), 'utf8');
    const before = await issueSvid({ caDir: dir, spiffeId: ID, outDir: join(root, 'o1'), name: 'old', ttlSeconds: 2 * 3600 });
    const result = await rotateCa({ dir });

    assert.notEqual(await readFile(join(dir, 'ca.crt'), 'utf8'), oldCert);
    assert.notEqual(await readFile(join(dir, 'ca.key'), 'utf8'), oldKey);
    assert.equal(await readFile(result.previous.keyPath, 'utf8'), oldKey);
    assert.equal(await readFile(result.previous.certPath, 'utf8'), oldCert);
    assert.equal((await stat(result.previous.keyPath)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'retired'))).mode & 0o777, 0o700);
    assert.deepEqual((await readdir(dir)).sort(), ['bundle.pem', 'ca.crt', 'ca.json', 'ca.key', 'retired']);

    const bundle = certsIn(await readFile(join(dir, 'bundle.pem'), 'utf8'));
    assert.deepEqual(bundle.map((c) => c.fingerprint256), [result.current.fingerprint256, new X509Certificate(oldCert).fingerprint256]);
    assert.equal(bundle[0]?.subject, 'O=meshgate\nCN=meshgate CA example.org #2');
    assert.equal(bundle[0]?.subjectAltName, 'URI:spiffe://example.org');
    assert.equal(result.previous.retainUntil?.getTime(), before.notAfter.getTime());

    const afterRotation = await issueSvid({ caDir: dir, spiffeId: ID, outDir: join(root, 'o1'), name: 'new' });
    const newLeaf = new X509Certificate(await readFile(afterRotation.certPath));
    assert.ok(newLeaf.checkIssued(new X509Certificate(await readFile(join(dir, 'ca.crt')))));
    assert.equal(await readFile(afterRotation.bundlePath, 'utf8'), await readFile(join(dir, 'bundle.pem'), 'utf8'));
    const bundlePath = join(dir, 'bundle.pem');
    assert.ok(await opensslAccepts(bundlePath, before.certPath), 'old-root certificate must verify');
    assert.ok(await opensslAccepts(bundlePath, afterRotation.certPath), 'new-root certificate must verify');
  });

  it('keeps an old root exactly until the latest notAfter it signed, then prunes it', async () => {
    const dir = await fresh();
    const now = new Date();
    const svid = await issueSvid({ caDir: dir, spiffeId: ID, outDir: join(root, 'o2'), ttlSeconds: 3600, now });
    const server = await issueServerCert({ caDir: dir, outDir: join(root, 'o2'), ttlSeconds: 86_400, now });
    await issueSvid({ caDir: dir, spiffeId: ID, outDir: join(root, 'o2'), name: 'short', ttlSeconds: 60, now });
    const rotated = await rotateCa({ dir, now });
    const retainUntil = rotated.previous.retainUntil;
    assert.equal(retainUntil?.getTime(), server.notAfter.getTime());
    assert.ok(rotated.previous.tracked);
    const record = (await metadata(dir)).roots.find((r) => r.fingerprint256 === rotated.previous.fingerprint256);
    assert.equal(record?.issuedUntil, server.notAfter.toISOString());
    assert.equal(record?.retired, now.toISOString());

    const atTheEnd = await pruneCa({ dir, now: server.notAfter });
    assert.equal(atTheEnd.pruned.length, 0, 'a certificate is valid through its notAfter instant');
    assert.ok(await opensslAccepts(join(dir, 'bundle.pem'), svid.certPath));

    const later = new Date(server.notAfter.getTime() + 1000);
    const pruned = await pruneCa({ dir, now: later });
    assert.deepEqual(pruned.pruned.map((r) => r.fingerprint256), [rotated.previous.fingerprint256]);
    assert.deepEqual(pruned.retained, []);
    assert.equal(certsIn(await readFile(join(dir, 'bundle.pem'), 'utf8')).length, 1);
    assert.ok(!(await opensslAccepts(join(dir, 'bundle.pem'), svid.certPath)), 'pruned root no longer trusted');
    assert.equal((await metadata(dir)).roots.find((r) => r.fingerprint256 === rotated.previous.fingerprint256)?.pruned, later.toISOString());
    assert.ok((await stat(rotated.previous.keyPath)).isFile(), 'pruning never deletes the retired key');
  });

  it('rotation itself prunes roots whose time has passed, across several rotations', async () => {
    const dir = await fresh();
    const t0 = new Date();
    await issueSvid({ caDir: dir, spiffeId: ID, outDir: join(root, 'o3'), ttlSeconds: 3600, now: t0 });
    const first = await rotateCa({ dir, now: t0 });
    const t1 = new Date(t0.getTime() + 30 * 60_000);
    await issueSvid({ caDir: dir, spiffeId: ID, outDir: join(root, 'o3'), ttlSeconds: 3600, now: t1 });
    const second = await rotateCa({ dir, now: t1 });
    assert.equal(second.current.subject, 'O=meshgate, CN=meshgate CA example.org #3');
    assert.deepEqual(second.retained.map((r) => r.fingerprint256), [first.current.fingerprint256, first.previous.fingerprint256]);
    const t2 = new Date(t0.getTime() + HOUR_MS + 1000);
    const third = await rotateCa({ dir, now: t2 });
    assert.deepEqual(third.pruned.map((r) => r.fingerprint256), [first.previous.fingerprint256]);
    assert.deepEqual(third.retained.map((r) => r.fingerprint256), [second.current.fingerprint256, first.current.fingerprint256]);
    assert.equal(certsIn(await readFile(join(dir, 'bundle.pem'), 'utf8')).length, 3);
  });

  it('assumes the max SVID TTL for a root whose issuances were never recorded (ca.json version 1)', async () => {
    const dir = await fresh();
    const v2 = await metadata(dir);
    await writeFile(join(dir, 'ca.json'), JSON.stringify({ version: 1, trustDomain: v2.trustDomain, created: v2.created, notAfter: v2.notAfter }));
    assert.equal((await loadCa(dir)).metadata.roots.length, 0);
    const now = new Date();
    const rotated = await rotateCa({ dir, now, maxSvidTtlSeconds: 2 * 3600 });
    assert.equal(rotated.previous.tracked, false);
    assert.equal(rotated.previous.retainUntil?.getTime(), now.getTime() + 2 * HOUR_MS);
    assert.equal((await metadata(dir)).version, 2);
    const defaulted = await rotateCa({ dir: await rewriteAsV1(await fresh()), now });
    assert.equal(defaulted.previous.retainUntil?.getTime(), now.getTime() + DEFAULT_SVID_TTL_SECONDS * 1000);
  });

  it('keeps certificates added to bundle.pem by hand, and a root that signed nothing only until the next prune', async () => {
    const dir = await fresh();
    const foreign = await makeTestCa('mesh.example');
    await writeFile(join(dir, 'bundle.pem'), (await readFile(join(dir, 'bundle.pem'), 'utf8')) + foreign.pem);
    const now = new Date();
    const rotated = await rotateCa({ dir, now });
    assert.equal(rotated.previous.retainUntil?.getTime(), now.getTime());
    const fingerprints = certsIn(await readFile(join(dir, 'bundle.pem'), 'utf8')).map((c) => c.fingerprint256);
    assert.deepEqual(fingerprints, [rotated.current.fingerprint256, rotated.previous.fingerprint256, new X509Certificate(foreign.pem).fingerprint256]);
    const pruned = await pruneCa({ dir, now: new Date(now.getTime() + 1) });
    assert.equal(pruned.pruned.length, 1);
    assert.equal(certsIn(await readFile(join(dir, 'bundle.pem'), 'utf8')).length, 2, 'the foreign root stays');
  });

  it('issues SVIDs for 4h by default', async () => {
    const dir = await fresh();
    const now = new Date();
    const issued = await issueSvid({ caDir: dir, spiffeId: ID, outDir: join(root, 'o5'), now });
    assert.equal(issued.notAfter.getTime(), Math.floor(now.getTime() / 1000) * 1000 + 4 * HOUR_MS);
  });

  it('finishes a rotation interrupted between ca.key and ca.crt', async () => {
    const dir = await fresh();
    const rotated = await rotateCa({ dir });
    await writeFile(join(dir, 'ca.crt'), await readFile(rotated.previous.certPath)); // the new key beside the old root
    await assert.rejects(issueSvid({ caDir: dir, spiffeId: ID, outDir: root }), isCode('MG_CONFIG_INVALID', /not the key of .*--prune-only/));
    await pruneCa({ dir });
    assert.equal(new X509Certificate(await readFile(join(dir, 'ca.crt'))).fingerprint256, rotated.current.fingerprint256);
    const issued = await issueSvid({ caDir: dir, spiffeId: ID, outDir: join(root, 'o6') });
    assert.ok(await opensslAccepts(join(dir, 'bundle.pem'), issued.certPath));
  });

  it('refuses a missing CA, a foreign key and bad options', async () => {
    await assert.rejects(rotateCa({ dir: join(root, 'none') }), isCode('MG_CA_MISSING', /ca init/));
    await assert.rejects(pruneCa({ dir: join(root, 'none') }), isCode('MG_CA_MISSING'));
    const dir = await fresh();
    await assert.rejects(rotateCa({ dir, ttlDays: 0 }), TypeError);
    await assert.rejects(rotateCa({ dir, maxSvidTtlSeconds: 1.5 }), TypeError);
    const other = await makeOddLeaf(await makeTestCa('example.org'));
    await writeFile(join(dir, 'ca.key'), other.keyPem);
    await assert.rejects(rotateCa({ dir }), isCode('MG_CONFIG_INVALID', /not the key of/));
  });

  it('serializes concurrent issuance so no notAfter is lost', async () => {
    const dir = await fresh();
    const now = new Date();
    const ttls = [600, 7200, 1800, 3600, 900, 5400];
    await Promise.all(ttls.map((ttl, i) => issueSvid({ caDir: dir, spiffeId: ID, outDir: join(root, 'o7'), name: `c${i}`, ttlSeconds: ttl, now })));
    const record = (await metadata(dir)).roots[0];
    assert.equal(record?.issuedUntil, new Date(Math.floor(now.getTime() / 1000) * 1000 + 7200_000).toISOString());
    await assert.rejects(stat(join(dir, 'ca.lock')), { code: 'ENOENT' });
  });

  it('meshgate ca rotate and --prune-only', async () => {
    const dir = await fresh();
    await issueSvid({ caDir: dir, spiffeId: ID, outDir: join(root, 'o8'), ttlSeconds: 60 });
    const rotate = await cli(root, ['ca', 'rotate', '--dir', dir, '--ttl', '90d']);
    assert.equal(rotate.code, 0);
    assert.match(rotate.out, /rotated the CA for trust domain example\.org/);
    assert.match(rotate.out, /issuing now: +O=meshgate, CN=meshgate CA example\.org #2 \[[0-9A-F:]{95}\], valid until/);
    assert.match(rotate.out, /stopped issuing: O=meshgate, CN=meshgate CA example\.org \[[0-9A-F:]+\] until \d{4}-/);
    assert.match(rotate.out, /retired\/ca-[0-9a-f]{16}\.key +previous root private key \(mode 0600/);
    assert.doesNotMatch(rotate.out, /no earlier roots/);
    const cert = new X509Certificate(await readFile(join(dir, 'ca.crt')));
    assert.ok(new Date(cert.validTo).getTime() - Date.now() > 89 * DAY_MS);
    const prune = await cli(root, ['ca', 'rotate', '--dir', dir, '--prune-only']);
    assert.match(prune.out, /kept in bundle: O=meshgate, CN=meshgate CA example\.org \[/);
    await assert.rejects(cli(root, ['ca', 'rotate', '--dir', dir, '--prune-only', '--ttl', '1d']), /--ttl has no effect/);
  });
});

async function rewriteAsV1(dir: string): Promise<string> {
  const v2 = await metadata(dir);
  await writeFile(join(dir, 'ca.json'), JSON.stringify({ version: 1, trustDomain: v2.trustDomain, created: v2.created, notAfter: v2.notAfter }));
  return dir;
}

async function cli(cwd: string, argv: string[]): Promise<{ code: number; out: string }> {
  const command = caCommands.find((c) => c.path.every((word, i) => argv[i] === word));
  assert.ok(command);
  const lines: string[] = [];
  const io: CliIO = { out: (l) => lines.push(l), err: (l) => lines.push(l), cwd, env: {} };
  const parsed = parseArgs({ args: argv.slice(command.path.length), options: command.options, strict: true });
  const code = await command.run(parsed.values as OptionValues, parsed.positionals, io);
  return { code, out: lines.join('\n') };
}
