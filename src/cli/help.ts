/** What the CLI says about calling it: a command's usage, a group's overview, a mistake in one line. */
import { isMeshgateError } from '../errors/index.ts';
import { UsageError, type CommandSpec } from './command.ts';

export function formatUsage(command: CommandSpec): string {
  const lines = [`usage: meshgate ${command.path.join(' ')} ${command.usage}`.trimEnd(), '', command.summary];
  if (command.help.trim() !== '') lines.push('', command.help.trimEnd());
  lines.push('  -h, --help              show this help');
  return lines.join('\n');
}

/** The commands under `group` ([] for all of them), one line each. */
export function formatOverview(commands: readonly CommandSpec[], group: readonly string[]): string {
  const matching = commands.filter((c) => group.every((word, i) => c.path[i] === word));
  const width = Math.max(...matching.map((c) => c.path.join(' ').length));
  const lines = [
    `usage: meshgate ${group.length > 0 ? group.join(' ') + ' ' : ''}<command> [options]`,
    '',
    'meshgate is an identity-aware proxy for MariaDB and Firestore: SPIFFE/mTLS identity, policy as code, audit.',
    '',
    'commands:',
    ...matching.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`),
    '',
    `Run 'meshgate <command> --help' for a command's options.`,
  ];
  return lines.join('\n');
}

/**
 * What went wrong with the arguments, in one line, or undefined when `error` is not about
 * them. node:util parseArgs explains at length and in its own words; the pointer to --help
 * that follows says the rest.
 */
export function describeUsageProblem(error: unknown): string | undefined {
  const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, ' ').trim();
  if (error instanceof UsageError) return oneLine(error.message);
  if (isMeshgateError(error)) return error.code === 'MG_USAGE' ? oneLine(error.toString()) : undefined;
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS') || typeof message !== 'string') return undefined;
  const option = /'(?:-\w, )?(-[^\s']+)/.exec(message)?.[1];
  const argument = /argument '([^']*)'/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option !== undefined) return `unknown option '${option}'`;
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' && argument !== undefined) return `unexpected argument '${argument}'`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option !== undefined) {
    return message.includes('does not take an argument') ? `${option} takes no value` : `${option} needs a value`;
  }
  return oneLine(message);
}
