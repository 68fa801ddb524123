#!/usr/bin/env node
// Runs test files with Node's own test runner (tsx as the loader), each file in its own
// process group, and ends with one honest line: 'N passed, N failed[, N skipped]'.
//
// Why not plain `node --test`: on Node 20 a file whose tests are done but which keeps a
// socket or timer open stalls the whole run forever, and a failed before/after hook is a
// failed *suite*, which a leaf-counting summary reports as '0 failed' while the run exits 1.
// Here every file has a time limit, a file that does not exit once its tests are done is
// ended and counted as a failure (with what it left open), hook and file-level failures
// count, and the exit code is computed from the same counts as the closing line.
//
// usage: node scripts/run-tests.mjs [FILE|DIR ...] [--test-name-pattern=… and other node flags]
// environment (seconds unless said otherwise):
//   MESHGATE_TEST_FILE_TIMEOUT   one file's limit (default 300)
//   MESHGATE_TEST_EXIT_GRACE     how long a file may stay alive once its tests are done (default 10)
//   MESHGATE_TEST_TOTAL_TIMEOUT  the whole run's limit (default 1500)
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';

const seconds = (name, fallback) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`run-tests: ${name} must be a positive number of seconds, not '${raw}'`);
    process.exit(2);
  }
  return value;
};
const FILE_TIMEOUT_S = seconds('MESHGATE_TEST_FILE_TIMEOUT', 300);
const EXIT_GRACE_S = seconds('MESHGATE_TEST_EXIT_GRACE', 10);
const TOTAL_TIMEOUT_S = seconds('MESHGATE_TEST_TOTAL_TIMEOUT', 1500);
const KILL_AFTER_MS = 3000;

const args = process.argv.slice(2);
const roots = args.filter((a) => !a.startsWith('--'));
const passthrough = args.filter((a) => a.startsWith('--'));

function collect(roots) {
  const files = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.test.ts')) files.push(path);
    }
  };
  for (const root of roots.length > 0 ? roots : ['test']) {
    if (!existsSync(root)) {
      console.error(`run-tests: ${root} does not exist; name test files or folders (default: test)`);
      process.exit(2);
    }
    if (statSync(root).isFile()) files.push(root);
    else walk(root);
  }
  return files;
}

const here = (name) => new URL(`./${name}`, import.meta.url).pathname;
const running = new Set();

/** Runs one file to its end and says what happened; never throws, never waits forever. */
function runFile(file) {
  return new Promise((resolveRun) => {
    const child = spawn(
      process.execPath,
      [
        '--import', 'tsx',
        '--import', here('test-guard.mjs'),
        '--test-reporter=spec', '--test-reporter-destination=stdout',
        `--test-reporter=${here('test-events.mjs')}`, '--test-reporter-destination=stdout',
        ...passthrough, file,
      ],
      { stdio: ['ignore', 'inherit', 'pipe', 'pipe'], detached: true },
    );
    running.add(child);
    const result = { file, passed: 0, failed: 0, skipped: 0, failures: [], problem: null, open: null };
    const names = [];
    const inFlight = new Map(); // top-level tests and suites started but not complete
    let sawTest = false;
    let graceTimer = null;
    let ending = false;

    const end = (problem) => {
      if (ending) return;
      ending = true;
      result.problem = problem;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {}
      setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {}
      }, KILL_AFTER_MS).unref();
    };
    const fileTimer = setTimeout(() => {
      const busy = [...inFlight.keys()];
      end(`did not finish in ${FILE_TIMEOUT_S} s (MESHGATE_TEST_FILE_TIMEOUT)${busy.length > 0 ? `; still running: ${busy.join(', ')}` : ''}`);
    }, FILE_TIMEOUT_S * 1000);

    const onEvent = (event) => {
      if (event.type === 'runner:open') {
        result.open = event.open;
      } else if (event.type === 'test:enqueue' && event.nesting === 0) {
        sawTest = true;
        inFlight.set(event.name, (inFlight.get(event.name) ?? 0) + 1);
        clearTimeout(graceTimer);
      } else if (event.type === 'test:complete' && event.nesting === 0) {
        const left = (inFlight.get(event.name) ?? 1) - 1;
        if (left > 0) inFlight.set(event.name, left);
        else inFlight.delete(event.name);
        if (inFlight.size === 0) {
          clearTimeout(graceTimer);
          graceTimer = setTimeout(
            () => end(`every test finished, but the process was still alive ${EXIT_GRACE_S} s later: close in after() what the tests opened (MESHGATE_TEST_EXIT_GRACE)`),
            EXIT_GRACE_S * 1000,
          );
        }
      } else if (event.type === 'test:start') {
        names.length = event.nesting;
        names[event.nesting] = event.name;
      } else if (event.type === 'test:pass' || event.type === 'test:fail') {
        const path = [...names.slice(0, event.nesting), event.name].join(' › ');
        if (event.suite) {
          // A suite fails on its own when a hook or its body throws; failures of its tests
          // are counted with the tests.
          if (event.type === 'test:fail' && event.failureType !== 'subtestsFailed') {
            result.failed++;
            result.failures.push(`${path} (${event.failureType}: ${event.message})`);
          }
          else if (event.skip) result.skipped++;
        } else if (event.skip) result.skipped++;
        else if (event.type === 'test:pass') result.passed++;
        else {
          result.failed++;
          result.failures.push(`${path}${event.message ? ` (${event.message})` : ''}`);
        }
      }
    };
    // Passed through as it comes; the last error line names the cause of a crash outside tests.
    let lastError = null;
    createInterface({ input: child.stderr }).on('line', (line) => {
      process.stderr.write(line + '\n');
      if (/^\w*(Error|Exception)\b.*:/.test(line)) lastError = line.trim();
    });
    createInterface({ input: child.stdio[3] }).on('line', (line) => {
      try {
        onEvent(JSON.parse(line));
      } catch {}
    });

    child.on('exit', (code, signal) => {
      clearTimeout(fileTimer);
      clearTimeout(graceTimer);
      running.delete(child);
      if (result.problem !== null) {
        result.failed++;
      } else if (code !== 0) {
        if (result.failed === 0) {
          result.failed++;
          result.problem =
            `exited with ${signal ?? `code ${code}`} although no test failed: an error outside any test (import, top-level code, or an unhandled rejection after the tests)` +
            (lastError === null ? '' : `: ${lastError}`);
        }
      } else if (!sawTest) {
        result.failed++;
        result.problem = 'ran no test';
      }
      resolveRun(result);
    });
  });
}

const stopAll = () => {
  for (const child of running) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {}
  }
};
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    stopAll();
    process.exit(130);
  });
}

const files = collect(roots);
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(2);
}
const deadline = Date.now() + TOTAL_TIMEOUT_S * 1000;
const results = [];
for (const file of files) {
  if (Date.now() >= deadline) {
    results.push({ file, passed: 0, failed: 1, skipped: 0, failures: [], problem: `not run: the whole run passed ${TOTAL_TIMEOUT_S} s (MESHGATE_TEST_TOTAL_TIMEOUT)`, open: null });
    continue;
  }
  results.push(await runFile(file));
}

const total = { passed: 0, failed: 0, skipped: 0 };
const report = [];
for (const r of results) {
  total.passed += r.passed;
  total.failed += r.failed;
  total.skipped += r.skipped;
  const name = relative(process.cwd(), r.file) || r.file;
  if (r.problem !== null) report.push(`  ✖ ${name}: ${r.problem}${r.open === null ? '' : `; open then: ${r.open}`}`);
  for (const failure of r.failures) report.push(`  ✖ ${name}: ${failure}`);
}
if (report.length > 0) console.log(`\nfailed:\n${report.join('\n')}`);
console.log(`\n${total.passed} passed, ${total.failed} failed${total.skipped > 0 ? `, ${total.skipped} skipped` : ''}`);
process.exit(total.failed > 0 ? 1 : 0);
