/** The README's table of commands lists each command of the CLI once, and nothing else. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { COMMANDS } from '../../../src/cli/registry.ts';

const README = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

/** The first cell of each row of the table under `## The \`meshgate\` command`. */
function commandCells(): string[] {
  const start = README.indexOf('\n## The `meshgate` command\n');
  assert.ok(start >= 0, 'README.md has a "## The `meshgate` command" section');
  const next = README.indexOf('\n## ', start + 1);
  const section = README.slice(start, next === -1 ? undefined : next);
  const rows = section.split('\n').filter((line) => line.startsWith('|'));
  assert.ok(rows.length > 2, 'the section has a table');
  // Row 0 is the header, row 1 the |---| line.
  return rows.slice(2).map((row) => row.split(/(?<!\\)\|/)[1]!.trim());
}

/** The command a cell names: the longest registered path its words start with. */
function commandOf(cell: string): string | undefined {
  const match = /^`meshgate ([^`]*)`$/.exec(cell);
  if (match === null) return undefined;
  const words = match[1]!.split(/\s+/);
  const found = COMMANDS.filter((c) => c.path.every((w, i) => words[i] === w)).sort((a, b) => b.path.length - a.path.length)[0];
  if (found === undefined) return undefined;
  // A further bare word would be a subcommand that does not exist (`ca issue server`).
  const after = words[found.path.length];
  return after !== undefined && /^[a-z][a-z-]*$/.test(after) ? undefined : found.path.join(' ');
}

describe('README: the meshgate command table', () => {
  const cells = commandCells();

  it('every row names one command that exists', () => {
    const unknown = cells.filter((cell) => commandOf(cell) === undefined);
    assert.deepEqual(unknown, [], 'rows that name no meshgate command (give one `meshgate …` per row)');
  });

  it('every command has exactly one row', () => {
    const named = cells.map(commandOf);
    const counts = COMMANDS.map((c) => c.path.join(' ')).map((path) => [path, named.filter((n) => n === path).length] as const);
    assert.deepEqual(counts.filter(([, n]) => n !== 1), [], 'commands without exactly one row: [path, rows]');
  });
});
