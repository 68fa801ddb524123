import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { CliIO } from '../../src/cli/command.ts';

/** A CliIO that keeps what a command prints: stdout, stderr, and both in order. */
export function captureIO(cwd: string = process.cwd()): CliIO & { stdout: string[]; stderr: string[]; all: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const all: string[] = [];
  return {
    stdout,
    stderr,
    all,
    out: (line) => {
      stdout.push(line);
      all.push(line);
    },
    err: (line) => {
      stderr.push(line);
      all.push(line);
    },
    cwd,
    env: {},
  };
}

/** src/cli/main.ts, run through tsx so tests need no build. */
export const CLI_MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** `meshgate ...argv` in a child process; stdout and stderr are pipes the test reads or closes. */
export function spawnCli(argv: readonly string[], options: { nodeArgs?: readonly string[]; env?: NodeJS.ProcessEnv } = {}): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(process.execPath, ['--import', 'tsx', ...(options.nodeArgs ?? []), CLI_MAIN, ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
  });
}

/** Waits for the child to end; collects its stderr (stdout is the test's to read or close). */
export async function exitOf(child: ChildProcessByStdio<null, Readable, Readable>): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const chunks: Buffer[] = [];
  child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stderr: Buffer.concat(chunks).toString('utf8') };
}
