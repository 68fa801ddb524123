/**
 * How meshgate answers a command line it cannot act on: one line on stderr naming the
 * problem and where to read more, exit 2; and what `--help` shows at each level.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../../../src/cli/main.ts';
import { COMMANDS } from '../../../src/cli/registry.ts';
import { captureIO } from '../../helpers/cli.ts';

async function cli(argv: string[]): Promise<{ code: number; stdout: string[]; stderr: string[] }> {
  const io = captureIO();
  const code = await runCli(argv, io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

const paths = (prefix: string) => COMMANDS.map((c) => c.path.join(' ')).filter((p) => p.startsWith(prefix));

describe('meshgate usage errors', () => {
  const cases: [string[], string][] = [
    [['ca', 'issue'], "meshgate ca issue: --spiffe-id is required (see 'meshgate ca issue --help')"],
    [['ca', 'issue', '--spiffe-id'], "meshgate ca issue: --spiffe-id needs a value (see 'meshgate ca issue --help')"],
    [['serve', '-c'], "meshgate serve: --config needs a value (see 'meshgate serve --help')"],
    [['ca', 'init', '--force=yes'], "meshgate ca init: --force takes no value (see 'meshgate ca init --help')"],
    [['ca', 'init', 'example.org'], "meshgate ca init: unexpected argument 'example.org' (see 'meshgate ca init --help')"],
    [['audit', 'tail', 'f.jsonl', '--follow'], "meshgate audit tail: unknown option '--follow' (see 'meshgate audit tail --help')"],
    [['audit', 'tail'], "meshgate audit tail: the audit FILE is required (see 'meshgate audit tail --help')"],
    // After `--`, --help is a file name like any other.
    [['audit', 'tail', '--', '--help'], "meshgate audit tail: no such file: --help (see 'meshgate audit tail --help')"],
    // MG_USAGE from deeper down is a usage error too, and keeps its code.
    [
      ['ca', 'issue', '--spiffe-id', 'spiffe://example.org/a', '--ttl', '1w'],
      `meshgate ca issue: [MG_USAGE] --ttl "1w" is not a duration: write a whole number and one unit, s, m, h or d (e.g. 90s, 30m, 4h, 7d) (see 'meshgate ca issue --help')`,
    ],
  ];
  for (const [argv, line] of cases) {
    it(`meshgate ${argv.join(' ')}: exit 2 and one line`, async () => {
      const { code, stdout, stderr } = await cli(argv);
      assert.deepEqual(stderr, [line]);
      assert.deepEqual(stdout, []);
      assert.equal(code, 2);
    });
  }

  it('other failures keep exit 1, one line with the code, and no pointer to help', async () => {
    const { code, stdout, stderr } = await cli(['serve', '--config', '/nonexistent/meshgate.yaml']);
    assert.equal(code, 1);
    assert.deepEqual(stdout, []);
    assert.equal(stderr.length, 1);
    assert.match(stderr[0]!, /^meshgate serve: \[MG_CONFIG_INVALID\] config file \/nonexistent\/meshgate\.yaml does not exist/);
    assert.doesNotMatch(stderr[0]!, /--help/);
  });
});

describe('meshgate unknown commands', () => {
  const cases: [string[], string][] = [
    [['frobnicate'], "meshgate: unknown command 'frobnicate' (see 'meshgate --help')"],
    [['frobnicate', '--help'], "meshgate: unknown command 'frobnicate' (see 'meshgate --help')"],
    [['help', 'frobnicate'], "meshgate: unknown command 'frobnicate' (see 'meshgate --help')"],
    [['ca', 'bogus'], "meshgate: unknown command 'ca bogus' (see 'meshgate ca --help')"],
    [['ca', 'bogus', '--help'], "meshgate: unknown command 'ca bogus' (see 'meshgate ca --help')"],
    [['ca', '-h', 'bogus'], "meshgate: unknown command 'ca bogus' (see 'meshgate ca --help')"],
    [['--version'], "meshgate: expected a command before '--version' (see 'meshgate --help')"],
    [['ca', '--dir', '.meshgate/ca'], "meshgate ca: expected a command before '--dir' (see 'meshgate ca --help')"],
  ];
  for (const [argv, line] of cases) {
    it(`meshgate ${argv.join(' ')}: exit 2 and one line`, async () => {
      const { code, stdout, stderr } = await cli(argv);
      assert.deepEqual(stderr, [line]);
      assert.deepEqual(stdout, []);
      assert.equal(code, 2);
    });
  }
});

describe('meshgate help at each level', () => {
  for (const argv of [[], ['--help'], ['-h'], ['help']]) {
    it(`meshgate ${argv.join(' ')} prints the overview of every command, exit 0`, async () => {
      const { code, stdout, stderr } = await cli(argv);
      assert.equal(code, 0);
      assert.deepEqual(stderr, []);
      assert.equal(stdout.length, 1);
      assert.match(stdout[0]!, /^usage: meshgate <command> \[options\]\n/);
      for (const path of paths('')) assert.match(stdout[0]!, new RegExp(`^  ${path} `, 'm'), path);
    });
  }

  // A group alone asks what is in it, as `meshgate` alone does.
  for (const argv of [['ca'], ['ca', '--help'], ['help', 'ca'], ['ca', '--dir', 'x', '--help']]) {
    it(`meshgate ${argv.join(' ')} prints the ca commands and no others, exit 0`, async () => {
      const { code, stdout, stderr } = await cli(argv);
      assert.equal(code, 0);
      assert.deepEqual(stderr, []);
      assert.match(stdout[0]!, /^usage: meshgate ca <command> \[options\]\n/);
      const listed = [...stdout[0]!.matchAll(/^ {2}(\S+(?: \S+)?) {2,}/gm)].map((m) => m[1]);
      assert.deepEqual(listed, paths('ca '));
    });
  }

  for (const argv of [['ca', 'issue', '--help'], ['help', 'ca', 'issue'], ['ca', 'issue', '-h', '--spiffe-id']]) {
    it(`meshgate ${argv.join(' ')} prints the usage of ca issue, exit 0`, async () => {
      const { code, stdout, stderr } = await cli(argv);
      assert.equal(code, 0);
      assert.deepEqual(stderr, []);
      assert.match(stdout[0]!, /^usage: meshgate ca issue --spiffe-id ID/);
    });
  }
});
