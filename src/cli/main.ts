#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMeshgateError } from '../errors/index.ts';
import type { CliCommand, CliIO } from './command.ts';
import { describeUsageProblem, formatOverview, formatUsage } from './help.ts';
import { COMMANDS } from './registry.ts';

const HELP_FLAGS = new Set(['--help', '-h', 'help']);

/** Exit code for a command line meshgate cannot act on, as the shell's own builtins use. */
const EXIT_USAGE = 2;

function findCommand(argv: readonly string[]): { command: CliCommand; rest: string[] } | undefined {
  let best: CliCommand | undefined;
  for (const command of COMMANDS) {
    const matches = command.path.every((word, i) => argv[i] === word);
    if (matches && (best === undefined || command.path.length > best.path.length)) best = command;
  }
  return best === undefined ? undefined : { command: best, rest: argv.slice(best.path.length) };
}

/** The leading words of argv that name a group of commands (`ca`), short of a whole command. */
function groupOf(argv: readonly string[]): string[] {
  const group: string[] = [];
  for (const word of argv) {
    const prefix = [...group, word];
    if (!COMMANDS.some((c) => c.path.length > prefix.length && prefix.every((w, i) => c.path[i] === w))) break;
    group.push(word);
  }
  return group;
}

/** argv names no command: show the group's overview when that is all it asks for, else say what is wrong. */
function withoutCommand(argv: readonly string[], wantsHelp: boolean, io: CliIO): number {
  const group = groupOf(argv);
  const where = ['meshgate', ...group].join(' ');
  const next = argv[group.length];
  if (next !== undefined && !next.startsWith('-')) {
    io.err(`meshgate: unknown command '${[...group, next].join(' ')}' (see '${where} --help')`);
    return EXIT_USAGE;
  }
  // `meshgate` and `meshgate ca` alone ask what there is, like their --help.
  if (next === undefined || wantsHelp) {
    io.out(formatOverview(COMMANDS, group));
    return 0;
  }
  io.err(`${where}: expected a command before '${next}' (see '${where} --help')`);
  return EXIT_USAGE;
}

export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  // After `--` every word is an operand, even one spelled like a request for help.
  const end = argv.includes('--') ? argv.indexOf('--') : argv.length;
  const wantsHelp = argv.some((a, i) => i < end && HELP_FLAGS.has(a));
  const words = argv.filter((a, i) => i >= end || !HELP_FLAGS.has(a));
  const found = findCommand(words);
  if (found === undefined) return withoutCommand(words, wantsHelp, io);
  const { command, rest } = found;
  if (wantsHelp) {
    io.out(formatUsage(command));
    return 0;
  }
  const where = `meshgate ${command.path.join(' ')}`;
  try {
    const parsed = parseArgs({
      args: rest,
      options: command.options,
      allowPositionals: command.allowPositionals ?? false,
      strict: true,
    });
    return await command.run(parsed.values as Record<string, string | boolean | undefined>, parsed.positionals, io);
  } catch (error) {
    const problem = describeUsageProblem(error);
    if (problem !== undefined) {
      io.err(`${where}: ${problem} (see '${where} --help')`);
      return EXIT_USAGE;
    }
    if (isMeshgateError(error)) {
      io.err(`${where}: ${error.toString()}`);
      return 1;
    }
    throw error;
  }
}

/**
 * Lines to stdout or stderr. When the reader goes away (`meshgate … | head -1`) it has all it
 * wanted: further output is dropped without a word, and the command ends with its own exit
 * code, where Node would otherwise die on the EPIPE with a stack trace.
 */
function lineWriter(stream: NodeJS.WriteStream): (line: string) => void {
  let readerGone = false;
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    readerGone = true;
  });
  return (line) => {
    if (!readerGone) stream.write(line.endsWith('\n') ? line : line + '\n');
  };
}

/** Entry point for bin/meshgate.js and `tsx src/cli/main.ts`. */
export function main(argv: readonly string[] = process.argv.slice(2)): void {
  const io: CliIO = { out: lineWriter(process.stdout), err: lineWriter(process.stderr), cwd: process.cwd(), env: process.env };
  runCli(argv, io).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      io.err(`meshgate: unexpected failure: ${(error as Error).stack ?? String(error)}`);
      process.exitCode = 70;
    },
  );
}

const invokedDirectly =
  process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
if (invokedDirectly) main();
