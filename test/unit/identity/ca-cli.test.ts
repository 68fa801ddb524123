import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { caCommands } from '../../../src/cli/commands/ca.ts';
import { UsageError, type CliIO, type OptionValues } from '../../../src/cli/command.ts';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { makeTempDir, readCert } from '../../helpers/certs.ts';

/** Runs one `ca` command the way main.ts does, minus the registry the lead wires up. */
async function run(cwd: string, argv: string[]): Promise<{ code: number; out: string }> {
  const command = caCommands.find((c) => c.path.every((word, i) => argv[i] === word));
  assert.ok(command, `no command for ${argv.join(' ')}`);
  const lines: string[] = [];
  const io: CliIO = { out: (l) => lines.push(l), err: (l) => lines.push(l), cwd, env: {} };
  const parsed = parseArgs({ args: argv.slice(command.path.length), options: command.options, strict: true });
  const code = await command.run(parsed.values as OptionValues, parsed.positionals, io);
  return { code, out: lines.join('\n') };
}

describe('meshgate ca commands', () => {
  let cwd: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir: cwd, cleanup } = await makeTempDir()));
  after(() => cleanup());

  it('documents every option in its help', () => {
    for (const command of caCommands) {
      assert.equal(command.path[0], 'ca');
      for (const option of Object.keys(command.options)) {
        assert.match(command.help, new RegExp(`--${option}\\b`), `${command.path.join(' ')} --${option} undocumented`);
      }
    }
  });

  it('init → issue → issue-server with the default directory', async () => {
    const init = await run(cwd, ['ca', 'init', '--trust-domain', 'example.org']);
    assert.equal(init.code, 0);
    assert.match(init.out, /created a CA for trust domain example\.org in \.meshgate\/ca, valid until \d{4}-/);
    assert.match(init.out, /\.meshgate\/ca\/ca\.key +root private key \(mode 0600/);
    assert.match(init.out, /next: meshgate ca issue --dir \.meshgate\/ca --spiffe-id spiffe:\/\/example\.org\//);
    assert.equal((await stat(join(cwd, '.meshgate/ca/ca.key'))).mode & 0o777, 0o600);

    const issue = await run(cwd, ['ca', 'issue', '--spiffe-id', 'spiffe://example.org/ns/shop/sa/orders', '--ttl', '30m', '--out', 'certs', '--name', 'orders']);
    assert.equal(issue.code, 0);
    assert.match(issue.out, /issued an SVID for spiffe:\/\/example\.org\/ns\/shop\/sa\/orders/);
    assert.match(issue.out, /valid: +30m, until \d{4}-\d\d-\d\dT/);
    assert.match(issue.out, /certs\/orders\.crt +certificate/);
    assert.match(issue.out, /certs\/orders\.key +private key/);
    assert.match(issue.out, /certs\/bundle\.pem +trust bundle/);
    const cert = await readCert(join(cwd, 'certs/orders.crt'));
    assert.equal(cert.subjectAltName, 'URI:spiffe://example.org/ns/shop/sa/orders');

    const server = await run(cwd, ['ca', 'issue-server', '--dns', 'db.local,proxy.local', '--dns', 'x.local', '--ip', '10.0.0.1', '--out', 'tls']);
    assert.equal(server.code, 0);
    assert.match(server.out, /SANs: +DNS:db\.local, DNS:proxy\.local, DNS:x\.local, IP:10\.0\.0\.1/);
    assert.match(server.out, /valid: +90d/);
    assert.ok((await stat(join(cwd, 'tls/server.key'))).isFile());
  });

  it('fails with coded, actionable errors', async () => {
    await assert.rejects(run(cwd, ['ca', 'init']), (e: unknown) => e instanceof UsageError && /--trust-domain is required/.test(e.message));
    await assert.rejects(run(cwd, ['ca', 'init', '--trust-domain', 'example.org']), (e: unknown) => isMeshgateError(e) && e.code === 'MG_CA_EXISTS');
    await assert.rejects(
      run(cwd, ['ca', 'issue', '--dir', 'nope', '--spiffe-id', 'spiffe://example.org/a']),
      (e: unknown) => isMeshgateError(e) && e.code === 'MG_CA_MISSING' && /meshgate ca init --dir .*nope --trust-domain/.test(e.message),
    );
    await assert.rejects(
      run(cwd, ['ca', 'issue', '--spiffe-id', 'spiffe://example.org/a', '--ttl', '1w']),
      (e: unknown) => isMeshgateError(e) && e.code === 'MG_USAGE' && /--ttl "1w"/.test(e.message),
    );
  });
});
