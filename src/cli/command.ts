import type { ParseArgsConfig } from 'node:util';

export type OptionSpecs = NonNullable<ParseArgsConfig['options']>;
export type OptionValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

/** What a command may touch of the outside world; tests pass their own. */
export interface CliIO {
  out(line: string): void;
  err(line: string): void;
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
}

/**
 * What a command accepts and says about itself, without what it does: enough to print help
 * and parse arguments, and cheap to load, so `meshgate --help` imports no database driver.
 */
export interface CommandSpec {
  /** Words that select the command: ['ca', 'init']. */
  readonly path: readonly string[];
  readonly summary: string;
  /** Usage line after `meshgate <path>`, e.g. '--spiffe-id ID [--ttl 1h]'. */
  readonly usage: string;
  /** Longer help: one line per option and any notes, printed under the usage. */
  readonly help: string;
  readonly options: OptionSpecs;
  readonly allowPositionals?: boolean;
}

export interface CliCommand extends CommandSpec {
  /** Resolves to the process exit code. Throws MeshgateError for failures users can fix. */
  run(values: OptionValues, positionals: string[], io: CliIO): Promise<number>;
}

export function requireString(values: OptionValues, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') {
    throw new UsageError(`--${name} is required`);
  }
  return value;
}

export function optionalString(values: OptionValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** A mistake in how the command was called; main prints it on one line, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
