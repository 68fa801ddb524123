/**
 * The test runner itself, on fixture suites that fail the ways real suites have failed
 * here: a broken hook, a test that never settles, a file that keeps a server open after
 * its tests, an error after the tests. The closing line must agree with the exit code,
 * and every failure must name its file.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const RUNNER = fileURLToPath(new URL('../../../scripts/run-tests.mjs', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../../fixtures/runner/', import.meta.url));

interface RunnerOutcome {
  readonly code: number;
  readonly output: string;
  readonly closing: string;
  readonly ms: number;
}

/** Runs the runner as a developer would; CI's own settings (MESHGATE_TEST_REQUIRE, …) are not the fixture's. */
function runRunner(fixtures: readonly string[], env: Record<string, string> = {}): Promise<RunnerOutcome> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [RUNNER, ...fixtures.map((name) => FIXTURES + name)],
      { env: { ...process.env, MESHGATE_TEST_REQUIRE: '', MESHGATE_TEST_TOTAL_TIMEOUT: '', MESHGATE_TEST_FILE_TIMEOUT: '4', MESHGATE_TEST_EXIT_GRACE: '1', ...env }, timeout: 30_000, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        if (code === -1) return reject(error);
        const lines = stdout.trimEnd().split('\n');
        resolve({ code, output: stdout + stderr, closing: lines.at(-1) ?? '', ms: Date.now() - started });
      },
    );
  });
}

describe('scripts/run-tests.mjs', () => {
  it('a passing suite: exit 0 and a closing line with what passed and was skipped (a skipped suite counts once)', async () => {
    const run = await runRunner(['passes.fixture.mjs']);
    assert.equal(run.closing, '2 passed, 0 failed, 2 skipped');
    assert.equal(run.code, 0, run.output);
  });

  it('a failing after() hook is a failure, although every test passed', async () => {
    const run = await runRunner(['after-hook-fails.fixture.mjs']);
    assert.equal(run.closing, '1 passed, 1 failed');
    assert.equal(run.code, 1);
    assert.match(run.output, /after-hook-fails\.fixture\.mjs: teardown breaks \(hookFailed: teardown broke\)/);
  });

  it('a failing before() hook fails the suite and its cancelled tests', async () => {
    const run = await runRunner(['before-hook-fails.fixture.mjs']);
    assert.equal(run.closing, '0 passed, 2 failed');
    assert.equal(run.code, 1);
    assert.match(run.output, /setup breaks \(hookFailed: setup broke\)/);
  });

  it('a test that never settles is ended at the file timeout and named', async () => {
    const run = await runRunner(['hangs.fixture.mjs']);
    assert.equal(run.closing, '0 passed, 1 failed');
    assert.equal(run.code, 1);
    assert.match(run.output, /hangs\.fixture\.mjs: did not finish in 4 s .*still running: waits forever/);
    assert.ok(run.ms < 15_000, `ended in ${run.ms} ms`);
  });

  it('a file whose tests are done but which keeps a server open is ended and counted, with what it left open', async () => {
    const run = await runRunner(['leaks-handle.fixture.mjs']);
    assert.equal(run.closing, '1 passed, 1 failed');
    assert.equal(run.code, 1);
    assert.match(run.output, /leaks-handle\.fixture\.mjs: every test finished, but the process was still alive 1 s later.*open then: TCPServerWrap/);
    assert.ok(run.ms < 15_000, `ended in ${run.ms} ms`);
  });

  it('an error outside any test fails the file even though its tests passed', async () => {
    const run = await runRunner(['crashes-after-tests.fixture.mjs']);
    assert.equal(run.closing, '1 passed, 1 failed');
    assert.equal(run.code, 1);
    assert.match(run.output, /crashes-after-tests\.fixture\.mjs: exited with code 1 although no test failed/);
  });

  it('one bad file does not hide the others: the counts add up across files', async () => {
    const run = await runRunner(['passes.fixture.mjs', 'leaks-handle.fixture.mjs', 'after-hook-fails.fixture.mjs']);
    assert.equal(run.closing, '4 passed, 2 failed, 2 skipped');
    assert.equal(run.code, 1);
  });

  it('a suite whose server is absent skips, naming the server and how to get it', async () => {
    const run = await runRunner(['needs-mariadb.fixture.ts'], { MESHGATE_TEST_MARIADB_PORT: '1' });
    assert.equal(run.closing, '0 passed, 0 failed, 1 skipped');
    assert.equal(run.code, 0);
    assert.match(run.output, /needs MariaDB \(.*\) # needs MariaDB at 127\.0\.0\.1:1 with user root \(apt-get install mariadb-server.*ECONNREFUSED/);
  });

  it('under MESHGATE_TEST_REQUIRE (as in CI) an absent server fails instead of skipping', async () => {
    const run = await runRunner(['needs-mariadb.fixture.ts'], { MESHGATE_TEST_MARIADB_PORT: '1', MESHGATE_TEST_REQUIRE: 'mariadb' });
    assert.equal(run.closing, '0 passed, 1 failed');
    assert.equal(run.code, 1);
    assert.match(run.output, /needs-mariadb\.fixture\.ts: exited with code 1 .*MESHGATE_TEST_REQUIRE names mariadb, but this suite needs MariaDB at 127\.0\.0\.1:1/);
  });

  it('the whole-run limit stops starting files, and each file not run is a failure', async () => {
    const run = await runRunner(['hangs.fixture.mjs', 'passes.fixture.mjs'], { MESHGATE_TEST_TOTAL_TIMEOUT: '2' });
    assert.equal(run.closing, '0 passed, 2 failed');
    assert.match(run.output, /passes\.fixture\.mjs: not run: the whole run passed 2 s/);
  });
});
