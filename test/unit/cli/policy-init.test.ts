/** `meshgate policy init`: what it writes passes `meshgate policy test`, and it never overwrites unasked. */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { runCli } from '../../../src/cli/main.ts';
import { captureIO } from '../../helpers/cli.ts';

const WRITTEN = ['00-deny-non-production.yaml', '10-mariadb.yaml', '20-firestore.yaml', 'README.md', 'tests/policy-tests.yaml'];

describe('meshgate policy init', () => {
  let cwd = '';
  before(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'mgt_policyinit_'));
  });
  after(async () => {
    await rm(cwd, { recursive: true, force: true });
  });

  const run = async (...argv: string[]) => {
    const io = captureIO(cwd);
    const code = await runCli(argv, io);
    return { code, out: io.stdout, err: io.stderr };
  };

  it('writes a commented policy, notes and tests; policy validate and policy test pass on them', async () => {
    const init = await run('policy', 'init', '--dir', 'policy');
    assert.deepEqual(init.err, []);
    assert.equal(init.code, 0);
    assert.deepEqual(init.out.slice(0, 5), WRITTEN.map((f) => `wrote policy/${f}`));
    assert.match(init.out.join('\n'), /app_writer \(read-write\), app_reader \(read-only\)/);
    assert.match(init.out.at(-1) ?? '', /^ {2}meshgate policy test policy --tests policy\/tests$/);

    for (const file of WRITTEN) {
      const text = await readFile(join(cwd, 'policy', file), 'utf8');
      assert.match(text, /meshgate policy init/, `${file} says where it came from`);
      if (file.endsWith('.yaml')) assert.match(text, /^# .*[Ee]dit|^# Add a case/m, `${file} says what to edit`);
    }
    const notes = await readFile(join(cwd, 'policy', 'README.md'), 'utf8');
    assert.match(notes, /CREATE ROLE app_writer;\nGRANT SELECT, INSERT, UPDATE, DELETE ON `app`\.\* TO app_writer;/);
    assert.match(notes, /CREATE ROLE app_reader;\nGRANT SELECT ON `app`\.\* TO app_reader;/);
    // MariaDB grants one role per GRANT ... WITH ADMIN OPTION; a list is a syntax error (1064).
    assert.match(notes, /GRANT app_writer TO meshgate_admin WITH ADMIN OPTION;\nGRANT app_reader TO meshgate_admin WITH ADMIN OPTION;/);

    const validate = await run('policy', 'validate', 'policy');
    assert.equal(validate.code, 0);
    assert.equal(validate.out.at(-1), 'ok: 3 files, 4 documents, 4 rules', 'the loader reads the three policy files, not README.md or tests/');

    const test = await run('policy', 'test', 'policy', '--tests', 'policy/tests');
    assert.deepEqual(test.err, []);
    assert.equal(test.out.at(-1), '10 passed, 0 failed');
    assert.ok(test.out.includes('ok    the writer in staging is denied'));
    assert.ok(test.out.includes('ok    the writer in dev is denied'));
    assert.equal(test.code, 0);
  });

  it('refuses to overwrite any existing file without --force, and writes nothing', async () => {
    await mkdir(join(cwd, 'partial'));
    await writeFile(join(cwd, 'partial', '10-mariadb.yaml'), '# mine\n');
    const refused = await run('policy', 'init', '--dir', 'partial');
    assert.equal(refused.code, 1);
    assert.deepEqual(refused.err, [
      'meshgate policy init: [MG_POLICY_INIT_EXISTS] partial/10-mariadb.yaml already exists; nothing was written. Pass --force to replace it, or choose another --dir',
    ]);
    assert.deepEqual(await readdir(join(cwd, 'partial')), ['10-mariadb.yaml']);
    assert.equal(await readFile(join(cwd, 'partial', '10-mariadb.yaml'), 'utf8'), '# mine\n');

    await writeFile(join(cwd, 'partial', 'zz-mine.yaml'), '# mine too\n');
    const forced = await run('policy', 'init', '--dir', 'partial', '--force', '--namespace', 'prod', '--deny-namespaces', 'staging,dev-*,*-test', '--database', 'shop');
    assert.equal(forced.code, 0);
    assert.ok(forced.out.includes('note: partial also holds zz-mine.yaml; the policy includes it, so the tests may need cases for it'), forced.out.join('\n'));
    assert.equal(await readFile(join(cwd, 'partial', 'zz-mine.yaml'), 'utf8'), '# mine too\n');
    assert.match(await readFile(join(cwd, 'partial', '10-mariadb.yaml'), 'utf8'), /role: shop_writer/);
    const test = await run('policy', 'test', 'partial', '--tests', 'partial/tests/policy-tests.yaml');
    assert.equal(test.out.at(-1), '11 passed, 0 failed');
    assert.ok(test.out.includes('ok    the writer in dev-x is denied'));
    assert.ok(test.out.includes('ok    the writer in x-test is denied'));
  });

  const usage: [string, string[], RegExp][] = [
    ['no --dir', [], /--dir is required/],
    ['a deny list that covers the granted namespace', ['--deny-namespaces', 'staging,prod*', '--namespace', 'production'], /"prod\*" would deny --namespace production/],
    ['a pattern Istio does not have', ['--deny-namespaces', 'st*ging'], /"st\*ging" is not a namespace name or a pattern/],
    ['an empty entry', ['--deny-namespaces', 'staging,,dev'], /"" is not a namespace name/],
    ['a namespace twice', ['--deny-namespaces', 'dev,dev'], /listed twice/],
    ['a database a role cannot be named after', ['--database', 'my-app'], /--database: "my-app" is not a MariaDB database name/],
    ['an upper-case namespace', ['--namespace', 'Prod'], /--namespace: "Prod" is not a Kubernetes namespace name/],
    ['a bad trust domain', ['--trust-domain', 'Cluster.Local'], /--trust-domain: "Cluster.Local" is not a trust domain/],
  ];
  for (const [name, args, message] of usage) {
    it(`usage: ${name} exits 2`, async () => {
      const dir = args.length === 0 ? [] : ['--dir', 'never'];
      const result = await run('policy', 'init', ...dir, ...args);
      assert.equal(result.code, 2);
      assert.equal(result.err.length, 1);
      assert.match(result.err[0]!, message);
    });
  }

  it('property: for any valid options, what init writes passes policy test', async () => {
    const label = fc.stringMatching(/^[a-z0-9](?:[-a-z0-9]{0,8}[a-z0-9])?$/);
    const pattern = fc.oneof(label, label.map((l) => `${l}*`), label.map((l) => `*${l}`));
    const covers = (p: string, ns: string) => (p.endsWith('*') ? ns.startsWith(p.slice(0, -1)) : p.startsWith('*') ? ns.endsWith(p.slice(1)) : p === ns);
    const options = fc
      .record({
        trustDomain: fc.stringMatching(/^[a-z0-9._-]{1,16}$/),
        namespace: label,
        deny: fc.uniqueArray(pattern, { minLength: 1, maxLength: 4 }),
        database: fc.stringMatching(/^[A-Za-z0-9_$]{1,12}$/),
      })
      .filter((o) => !o.deny.some((p) => covers(p, o.namespace)));
    let run_ = 0;
    await fc.assert(
      fc.asyncProperty(options, async (o) => {
        run_ += 1;
        const dir = `prop-${run_}`;
        // `=` keeps a value such as `--` or `-a` from being read as an option.
        const argv = ['policy', 'init', `--dir=${dir}`, `--trust-domain=${o.trustDomain}`, `--namespace=${o.namespace}`, `--deny-namespaces=${o.deny.join(',')}`, `--database=${o.database}`];
        const init = await run(...argv);
        assert.deepEqual(init.err, [], argv.join(' '));
        const test = await run('policy', 'test', dir, '--tests', join(dir, 'tests'));
        assert.deepEqual(test.err, [], argv.join(' '));
        assert.match(test.out.at(-1) ?? '', / passed, 0 failed$/, `${argv.join(' ')}\n${test.out.join('\n')}`);
        assert.equal(test.code, 0);
      }),
      { numRuns: 60, seed: 15_8 },
    );
  });
});
