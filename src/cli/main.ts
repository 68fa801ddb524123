#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMeshgateError } from '../errors/index.ts';
import { UsageError, type CliCommand, type CliIO } from './command.ts';
import { COMMANDS } from './registry.ts';

const HELP_FLAGS = new Set(['--help', '-h', 'help']);

function formatUsage(command: CliCommand): string {
  const lines = [`usage: meshgate ${command.path.join(' ')} ${command.usage}`.trimEnd(), '', command.summary];
  if (command.help.trim() !== '') lines.push('', command.help.trimEnd());
  lines.push('  -h, --help              show this help');
  return lines.join('\n');
}

function formatOverview(prefix: readonly string[]): string {
  const matching = COMMANDS.filter((c) => prefix.every((word, i) => c.path[i] === word));
  const width = Math.max(...matching.map((c) => c.path.join(' ').length));
  const lines = [
    `usage: meshgate ${prefix.length > 0 ? prefix.join(' ') + ' ' : ''}<command> [options]`,
    '',
    'meshgate is an identity-aware proxy for MariaDB: SPIFFE/mTLS identity, policy as code, audit.',
    '',
    'commands:',
    ...matching.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`),
    '',
    `Run 'meshgate <command> --help' for a command's options.`,
  ];
  return lines.join('\n');
}

function findCommand(argv: readonly string[]): { command: CliCommand; rest: string[] } | undefined {
  let best: CliCommand | undefined;
  for (const command of COMMANDS) {
    const matches = command.path.every((word, i) => argv[i] === word);
    if (matches && (best === undefined || command.path.length > best.path.length)) best = command;
  }
  return best === undefined ? undefined : { command: best, rest: argv.slice(best.path.length) };
}

export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  const found = findCommand(argv);
  if (found === undefined) {
    const prefix = argv.filter((a) => !a.startsWith('-'));
    const known = COMMANDS.some((c) => prefix.length > 0 && c.path[0] === prefix[0]);
    const wantsHelp = argv.length === 0 || argv.some((a) => HELP_FLAGS.has(a));
    if (!wantsHelp) io.err(`meshgate: unknown command '${argv.join(' ')}'\n`);
    io.out(formatOverview(known ? prefix.slice(0, 1) : []));
    return wantsHelp ? 0 : 2;
  }
  const { command, rest } = found;
  if (rest.some((a) => HELP_FLAGS.has(a))) {
    io.out(formatUsage(command));
    return 0;
  }
  try {
    const parsed = parseArgs({
      args: rest,
      options: command.options,
      allowPositionals: command.allowPositionals ?? false,
      strict: true,
    });
    return await command.run(parsed.values as Record<string, string | boolean | undefined>, parsed.positionals, io);
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`meshgate ${command.path.join(' ')}: ${(error as Error).message}\n`);
      io.err(formatUsage(command));
      return 2;
    }
    if (isMeshgateError(error)) {
      io.err(`meshgate ${command.path.join(' ')}: ${error.toString()}`);
      return 1;
    }
    throw error;
  }
}

const processIO: CliIO = {
  out: (line) => process.stdout.write(line.endsWith('\n') ? line : line + '\n'),
  err: (line) => process.stderr.write(line.endsWith('\n') ? line : line + '\n'),
  cwd: process.cwd(),
  env: process.env,
};

/** Entry point for bin/meshgate.js and `tsx src/cli/main.ts`. */
export function main(argv: readonly string[] = process.argv.slice(2)): void {
  runCli(argv, processIO).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`meshgate: unexpected failure: ${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = 70;
    },
  );
}

const invokedDirectly =
  process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
if (invokedDirectly) main();
