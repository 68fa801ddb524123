import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfigFile, readSecret } from '../../../src/config/load.ts';
import { isMeshgateError } from '../../../src/errors/index.ts';

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

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
    assert.equal(config.listener?.host, '127.0.0.1');
    assert.equal(config.listener?.tls.required, true);
    assert.equal(config.upstream?.port, 3306);
    assert.equal(config.policy.dir, join(dir, 'policy'));
    assert.equal(config.audit.file, join(dir, 'audit.jsonl'));
    assert.ok(Object.isFrozen(config));
  });

  it('listener.tls names the certificate as before; every port then finds it under tls', async () => {
    const config = loadConfigFile(await write(valid));
    assert.deepEqual(config.tls, { cert: join(dir, 'tls/server.crt'), key: join(dir, 'tls/server.key') });
    assert.equal(config.firestore, undefined, 'a MySQL-only config needs no Firestore settings');
  });

  it('a Firestore-only config: no listener, no upstream, the certificate under tls', async () => {
    const config = loadConfigFile(
      await write(`
tls: { cert: tls/server.crt, key: tls/server.key }
trust: { bundles: [tls/bundle.pem], trustDomains: [cluster.local] }
policy: { dir: policy }
firestore: { project: shop-prod, upstream: { emulator: "127.0.0.1:8080" } }
`),
    );
    assert.equal(config.listener, undefined);
    assert.equal(config.upstream, undefined);
    assert.deepEqual(config.tls, { cert: join(dir, 'tls/server.crt'), key: join(dir, 'tls/server.key') });
    assert.equal(config.firestore?.tls, 'mtls');
  });

  it('a plaintext Firestore behind its sidecar needs no certificate', async () => {
    const config = loadConfigFile(
      await write(`
trust: { bundles: [tls/bundle.pem], trustDomains: [cluster.local] }
policy: { dir: policy }
firestore: { tls: plaintext, trustedHops: [127.0.0.6], project: shop-prod, upstream: { emulator: "127.0.0.1:8080" } }
`),
    );
    assert.equal(config.tls, undefined);
  });

  it('names the file, field and line of an unknown key, with the allowed keys and the likely one', async () => {
    const path = await write(valid + 'listner: {}\n');
    const allowed = 'listener, tls, trust, upstream, state, firestore, admin, policy, tokens, signer, audit, tracing, metrics, throttle, shutdown';
    const expected = `${path}: listner: unknown key; allowed here: ${allowed}; did you mean listener? (line 8, column 1)`;
    assert.throws(() => loadConfigFile(path), invalid(new RegExp(`^${escape(expected)}$`)));
  });

  it('takes audit.export.postgres with its defaults, and names a bad table or an inline URL', async () => {
    const config = loadConfigFile(await write(valid + 'audit:\n  export:\n    postgres: { url: { env: AUDIT_PG_URL } }\n'));
    assert.deepEqual(config.audit.export?.postgres, { url: { env: 'AUDIT_PG_URL' }, table: 'meshgate_audit_events', batch: 500, interval: '1s' });
    const fromFile = loadConfigFile(await write(valid + 'audit:\n  export:\n    postgres: { url: { file: secrets/audit-pg-url } }\n'));
    assert.deepEqual(fromFile.audit.export?.postgres.url, { file: join(dir, 'secrets/audit-pg-url') }, 'a file is read relative to the config');
    const badTable = await write(valid + 'audit:\n  export:\n    postgres: { url: { env: U }, table: "x; drop" }\n');
    assert.throws(() => loadConfigFile(badTable), invalid(/audit\.export\.postgres\.table: .*a PostgreSQL table name/));
    const inline = await write(valid + 'audit:\n  export:\n    postgres: { url: "postgres://u:hunter2@h/db" }\n');
    assert.throws(() => loadConfigFile(inline), (error: unknown) => {
      invalid(/audit\.export\.postgres\.url/)(error);
      assert.ok(!(error as Error).message.includes('hunter2'));
      return true;
    });
    const tooBig = await write(valid + 'audit:\n  export:\n    postgres: { url: { env: U }, batch: 5000 }\n');
    assert.throws(() => loadConfigFile(tooBig), invalid(/audit\.export\.postgres\.batch/));
  });

  it('takes a metrics section: a listener address, an upstream check interval; a bad address is named', async () => {
    const config = loadConfigFile(await write(valid + 'metrics: { listen: "[::1]:9464" }\n'));
    assert.deepEqual(config.metrics, { listen: '[::1]:9464', upstreamCheckInterval: '15s' });
    assert.equal(loadConfigFile(await write(valid)).metrics, undefined, 'absent: no metrics');
    const path = await write(valid + 'metrics: { listen: "9464" }\n');
    assert.throws(() => loadConfigFile(path), invalid(/metrics\.listen: expected HOST:PORT, e\.g\. 127\.0\.0\.1:9464/));
  });

  it('refuses an inline password, never repeats it, and says how to give it', async () => {
    const path = await write(valid.replace('{ env: SHOP_WRITER_PASSWORD }', 'hunter2'));
    const expected = `${path}: upstream.roles.shop_writer.password: inline passwords are not allowed: use password: { file: … } or { env: … } (line 6, column 42)`;
    assert.throws(() => loadConfigFile(path), (error: unknown) => {
      invalid(new RegExp(`^${escape(expected)}$`))(error);
      assert.ok(!(error as Error).message.includes('hunter2'));
      return true;
    });
  });

  it('names missing files with their line and the fix', async () => {
    const path = await write(valid.replace('tls/bundle.pem', 'tls/nope.pem'));
    const expected = `${path}: trust.bundles[0]: tls/nope.pem (${join(dir, 'tls', 'nope.pem')}) does not exist; use meshgate's CA bundle (\`meshgate ca init\`) or Istio's root-cert.pem (line 3, column 20)`;
    assert.throws(() => loadConfigFile(path), invalid(new RegExp(`^${escape(expected)}$`)));
  });

  it('reports YAML syntax errors with a line and column', async () => {
    const path = await write('listener: [\n');
    assert.throws(() => loadConfigFile(path), invalid(new RegExp(`^${escape(path)}: not valid YAML: .+ \\(line 2, column 1\\)$`)));
  });

  it('says when the file is missing', () => {
    assert.throws(() => loadConfigFile(join(dir, 'absent.yaml')), invalid(/does not exist; pass --config/));
  });

  it('reads secrets from env and files without echoing them in errors', async () => {
    assert.equal(readSecret({ env: 'X' }, 'f', { X: 'v' }), 'v');
    await writeFile(join(dir, 'pw'), 'from-file\n');
    assert.equal(readSecret({ file: join(dir, 'pw') }, 'f'), 'from-file');
    assert.throws(
      () => readSecret({ env: 'MISSING' }, 'upstream.roles.r.password', {}),
      invalid(/^upstream\.roles\.r\.password: environment variable MISSING is not set; set it, or use password: \{ file: … \}$/),
    );
  });
});
