import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfigFile, readSecret } from '../../../src/config/load.ts';
import { isMeshgateError } from '../../../src/errors/index.ts';

const invalid = (pattern: RegExp) => (error: unknown) => {
  assert.ok(isMeshgateError(error) && error.code === 'MG_CONFIG_INVALID', String(error));
  assert.match(error.message, pattern);
  return true;
};

describe('config', () => {
  let dir: string;
  const write = async (text: string) => {
    const path = join(dir, 'meshgate.yaml');
    await writeFile(path, text);
    return path;
  };
  const valid = `
listener: { port: 3307, tls: { cert: tls/server.crt, key: tls/server.key } }
trust: { bundles: [tls/bundle.pem], trustDomains: [cluster.local] }
upstream:
  roles:
    shop_writer: { user: mg_shop_writer, password: { env: SHOP_WRITER_PASSWORD } }
policy: { dir: policy }
`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-config-'));
    await mkdir(join(dir, 'tls'));
    await mkdir(join(dir, 'policy'));
    for (const f of ['server.crt', 'server.key', 'bundle.pem']) await writeFile(join(dir, 'tls', f), 'x');
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('loads a valid file, fills defaults and resolves paths against its folder', async () => {
    const config = loadConfigFile(await write(valid));
    assert.equal(config.listener.host, '127.0.0.1');
    assert.equal(config.listener.tls.required, true);
    assert.equal(config.upstream.port, 3306);
    assert.equal(config.policy.dir, join(dir, 'policy'));
    assert.equal(config.audit.file, join(dir, 'audit.jsonl'));
    assert.ok(Object.isFrozen(config));
  });

  it('names the field of an unknown key', async () => {
    await assert.rejects(async () => loadConfigFile(await write(valid + 'listner: {}\n')), invalid(/listner|Unrecognized/));
  });

  it('refuses an inline password: secrets come from env or file', async () => {
    const text = valid.replace('{ env: SHOP_WRITER_PASSWORD }', 'hunter2');
    await assert.rejects(async () => loadConfigFile(await write(text)), invalid(/upstream\.roles\.shop_writer\.password/));
  });

  it('names missing files with the fix', async () => {
    const text = valid.replace('tls/bundle.pem', 'tls/nope.pem');
    await assert.rejects(async () => loadConfigFile(await write(text)), invalid(/trust\.bundles\[0\]: .*nope\.pem does not exist/));
  });

  it('reports YAML syntax errors with a line', async () => {
    await assert.rejects(async () => loadConfigFile(await write('listener: [\n')), invalid(/line \d+/));
  });

  it('says when the file is missing', () => {
    assert.throws(() => loadConfigFile(join(dir, 'absent.yaml')), invalid(/does not exist; pass --config/));
  });

  it('reads secrets from env and files without echoing them in errors', async () => {
    assert.equal(readSecret({ env: 'X' }, 'f', { X: 'v' }), 'v');
    await writeFile(join(dir, 'pw'), 'from-file\n');
    assert.equal(readSecret({ file: join(dir, 'pw') }, 'f'), 'from-file');
    assert.throws(() => readSecret({ env: 'MISSING' }, 'upstream.roles.r.password', {}), invalid(/MISSING is not set/));
  });
});
