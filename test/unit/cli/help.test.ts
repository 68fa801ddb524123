import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../../../src/cli/main.ts';
import { COMMANDS } from '../../../src/cli/registry.ts';
import { captureIO } from '../../helpers/cli.ts';

describe('meshgate CLI', () => {
  it('lists every command in the overview', async () => {
    const io = captureIO();
    assert.equal(await runCli(['--help'], io), 0);
    for (const command of COMMANDS) assert.ok(io.stdout.join('\n').includes(command.path.join(' ')), command.path.join(' '));
  });

  for (const command of COMMANDS) {
    it(`meshgate ${command.path.join(' ')} --help explains itself`, async () => {
      const io = captureIO();
      assert.equal(await runCli([...command.path, '--help'], io), 0);
      const text = io.stdout.join('\n');
      assert.match(text, new RegExp(`^usage: meshgate ${command.path.join(' ')}`));
      assert.ok(text.includes(command.summary));
      for (const option of Object.keys(command.options)) assert.ok(text.includes(`--${option}`), `--${option} is undocumented`);
    });
  }

  it('rejects unknown commands and options in one line with a pointer to help, exit 2', async () => {
    const io = captureIO();
    assert.equal(await runCli(['frobnicate'], io), 2);
    assert.deepEqual(io.stderr, ["meshgate: unknown command 'frobnicate' (see 'meshgate --help')"]);
    assert.deepEqual(io.stdout, []);
    const io2 = captureIO();
    assert.equal(await runCli(['serve', '--no-such-flag'], io2), 2);
    assert.deepEqual(io2.stderr, ["meshgate serve: unknown option '--no-such-flag' (see 'meshgate serve --help')"]);
    assert.deepEqual(io2.stdout, []);
  });

  it('serve with a missing config says so and exits 1', async () => {
    const io = captureIO();
    assert.equal(await runCli(['serve', '--config', '/nonexistent/meshgate.yaml'], io), 1);
    assert.match(io.stderr.join('\n'), /\[MG_CONFIG_INVALID\] config file \/nonexistent\/meshgate.yaml does not exist/);
  });
});
