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
