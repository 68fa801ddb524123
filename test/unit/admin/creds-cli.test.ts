/**
 * `meshgate creds ...` mistakes that need no MariaDB: usage errors (exit 2) before anything
 * is opened, and config problems named with MG_CONFIG_INVALID (exit 1).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../../../src/cli/main.ts';
import { initCa, issueServerCert } from '../../../src/identity/ca.ts';
import { captureIO } from '../../helpers/cli.ts';
import { makeTempDir } from '../../helpers/certs.ts';

describe('meshgate creds (no database needed)', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let envConfig: string;
  let staticConfig: string;

  before(async () => {
    tmp = await makeTempDir('meshgate-creds-cli-');
    await initCa({ dir: join(tmp.dir, 'ca'), trustDomain: 'example.org' });
    await issueServerCert({ caDir: join(tmp.dir, 'ca'), outDir: tmp.dir });
    const base = {
      listener: { tls: { cert: 'server.crt', key: 'server.key' } },
      trust: { bundles: ['ca/bundle.pem'], trustDomains: ['example.org'] },
      policy: { dir: '.' },
    };
    envConfig = join(tmp.dir, 'env.yaml');
    await writeFile(envConfig, JSON.stringify({ ...base, upstream: { credentials: { admin: { user: 'meshgate_admin', password: { env: 'MG_ADMIN_PW' } } } } }));
    staticConfig = join(tmp.dir, 'static.yaml');
    await writeFile(staticConfig, JSON.stringify({ ...base, upstream: { roles: { app_ro: { user: 'ro', password: { env: 'RO_PW' } } } } }));
  });
  after(() => tmp?.cleanup());

  const cli = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const io = { ...captureIO(), env };
    const code = await runCli(['creds', ...args], io);
    return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
  };

  it('usage mistakes exit 2 with one line pointing to the usage', async () => {
    const cases: [string[], RegExp][] = [
      [['issue', '--database', 'shop'], /--config is required \(or --server URL/],
      [['issue', '--config', 'x.yaml'], /--database is required/],
      [['issue', '--config', 'x.yaml', '--server', 'https://h:1', '--database', 'd'], /--config .* or --server .*, not both/],
      [['issue', '--config', 'x.yaml', '--cert', 'c.pem', '--database', 'd'], /--cert applies only with --server/],
      [['issue', '--database', 'd', '--ttl', 'soon', '--config', 'x.yaml'], /--ttl "soon" is not a duration/],
      [['revoke', '--config', 'x.yaml'], /say which leases to revoke: --lease ID, --identity SPIFFE_ID or --role ROLE/],
      [['revoke', '--config', 'x.yaml', '--lease', 'lease_x', '--role', 'r'], /--lease names one lease already/],
      [['list', '--verbose', '--config', 'x.yaml'], /unknown option '--verbose'/],
    ];
    for (const [args, message] of cases) {
      const { code, err } = await cli(args);
      assert.equal(code, 2, args.join(' ') + '\n' + err);
      assert.match(err, message, args.join(' '));
      assert.match(err, new RegExp(`^meshgate creds ${args[0]}: [^\n]* \\(see 'meshgate creds ${args[0]} --help'\\)$`), args.join(' '));
    }
  });

  it('a token given twice, or none at all, is a usage error; an empty --token-file too', async () => {
    const empty = join(tmp.dir, 'empty.token');
    await writeFile(empty, '\n');
    const twice = await cli(['issue', '--config', envConfig, '--database', 'd', '--token', 'a.b.c', '--token-file', empty]);
    assert.equal(twice.code, 2);
    assert.match(twice.err, /give the token once/);
    const none = await cli(['issue', '--config', envConfig, '--database', 'd']);
    assert.equal(none.code, 2);
    assert.match(none.err, /no token: pass --token-file PATH, set MESHGATE_TOKEN, or pass --token JWT/);
    const blank = await cli(['issue', '--config', envConfig, '--database', 'd', '--token-file', empty]);
    assert.equal(blank.code, 2);
    assert.match(blank.err, /is empty/);
    const missing = await cli(['issue', '--config', envConfig, '--database', 'd', '--token-file', join(tmp.dir, 'nope')]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /\[MG_CONFIG_INVALID\] --token-file: cannot read .*nope \(ENOENT\)/);
  });

  it('config problems are MG_CONFIG_INVALID, named before anything is opened', async () => {
    const noTokens = await cli(['issue', '--config', envConfig, '--database', 'd'], { MESHGATE_TOKEN: 'a.b.c' });
    assert.equal(noTokens.code, 1);
    assert.match(noTokens.err, /\[MG_CONFIG_INVALID\] .*env\.yaml has no tokens section/);
    const rotateEnv = await cli(['rotate-root', '--config', envConfig]);
    assert.equal(rotateEnv.code, 1);
    assert.match(rotateEnv.err, /\[MG_CONFIG_INVALID\] the admin password comes from an environment variable/);
    const noDynamic = await cli(['revoke', '--config', staticConfig, '--role', 'app_ro']);
    assert.equal(noDynamic.code, 1);
    assert.match(noDynamic.err, /\[MG_CONFIG_INVALID\] .*static\.yaml has no upstream\.credentials/);
    const missing = await cli(['list', '--config', join(tmp.dir, 'missing.yaml')]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /\[MG_CONFIG_INVALID\] config file .*missing\.yaml does not exist/);
  });

  it('creds list with an empty embedded store says there is nothing, as text and as JSON', async () => {
    const text = await cli(['list', '--config', staticConfig]);
    assert.equal(text.code, 0, text.err);
    assert.equal(text.out, 'no live leases (--all also lists revoked ones)');
    const json = await cli(['list', '--config', staticConfig, '--all', '--json']);
    assert.deepEqual(JSON.parse(json.out), { leases: [] });
  });

  it('--server must be https and reachable', async () => {
    const plain = await cli(['list', '--server', 'http://127.0.0.1:1']);
    assert.equal(plain.code, 2);
    assert.match(plain.err, /\[MG_USAGE\] --server must be an https:\/\/ URL/);
    const down = await cli(['list', '--server', 'https://127.0.0.1:1']);
    assert.equal(down.code, 1);
    assert.match(down.err, /\[MG_CONFIG_INVALID\] cannot reach the admin API at https:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\)/);
  });
});
