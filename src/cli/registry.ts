import type { CliCommand } from './command.ts';

/**
 * Every `meshgate` subcommand. Each concern's commands live in its own module under
 * src/cli/commands/ and are listed here once.
 */
export const COMMANDS: readonly CliCommand[] = [];
