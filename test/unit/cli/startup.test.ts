/**
 * `meshgate --help` answers at once: help and argument errors load the command specs and
 * nothing else, and a command's implementation (drivers, gRPC, the server) loads when it runs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { exitOf, spawnCli } from '../../helpers/cli.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

// A module loader hook in the child that writes down every module it resolves.
const HOOKS = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  appendFileSync(process.env.MESHGATE_TEST_IMPORT_LOG, resolved.url + '\\n');
  return resolved;
}`;
const REGISTER = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});`;

/**
 * Outside src/cli/, what the CLI's own modules may load before a command runs: the error
 * registry. A package or any other folder here fails the test.
 */
const allowedOutsideCli = (path: string): boolean => path === 'src/errors/index.ts';

describe('meshgate startup', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-cli-startup-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  let runs = 0;
  /** The project files and packages `meshgate ...argv` loads, as paths relative to the checkout. */
  async function modulesLoadedBy(argv: string[]): Promise<string[]> {
    const log = join(dir, `imports-${runs++}.log`);
    const child = spawnCli(argv, {
      nodeArgs: ['--import', `data:text/javascript,${encodeURIComponent(REGISTER)}`],
      env: { ...process.env, MESHGATE_TEST_IMPORT_LOG: log },
    });
    child.stdout.resume();
    const { stderr } = await exitOf(child);
    const urls = (await readFile(log, 'utf8')).split('\n').filter((u) => u.startsWith('file:'));
    const loaded = [...new Set(urls.map((u) => relative(ROOT, fileURLToPath(u))))].sort();
    assert.ok(loaded.includes('src/cli/registry.ts'), `the hook saw the CLI load (stderr: ${stderr})`);
    return loaded;
  }

  for (const argv of [['--help'], ['ca', 'issue', '--help'], ['frobnicate']]) {
    it(`meshgate ${argv.join(' ')} loads no package and no command implementation`, async () => {
      const loaded = await modulesLoadedBy(argv);
      const heavy = loaded.filter((path) => !(path.startsWith('src/cli/') && !path.startsWith('src/cli/commands/')) && !allowedOutsideCli(path));
      assert.deepEqual(heavy, []);
    });
  }

  it('running a command loads its implementation, and only that one', async () => {
    const loaded = await modulesLoadedBy(['audit', 'tail']);
    assert.deepEqual(loaded.filter((path) => path.startsWith('src/cli/commands/')), ['src/cli/commands/audit.ts']);
  });
});
