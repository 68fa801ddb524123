/**
 * Problems → the one MG_CONFIG_INVALID message: each on its own line naming the file, the
 * field and where it is written, in the order they appear in the file, like policy errors.
 */
import { mgError, type MeshgateError } from '../errors/index.ts';
import type { ConfigProblem } from './describe.ts';
import type { Locate, SourcePosition } from './yaml-positions.ts';

/** Enough to see what is wrong without burying the first problem (as for policy). */
export const MAX_REPORTED = 20;

export interface PlacedProblem {
  /** Empty for a problem with the file as a whole. */
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly position: SourcePosition | null;
}

export function placeProblems(problems: readonly ConfigProblem[], locate: Locate): PlacedProblem[] {
  return problems.map((problem) => ({ ...problem, position: locate(problem.path) }));
}

export function configError(file: string, problems: readonly PlacedProblem[]): MeshgateError {
  // Stable sort: problems with no place in the file (missing sections, or a config given as
  // an object) keep their schema order, after those that have one.
  const ordered = [...problems].sort((a, b) => (a.position?.offset ?? Infinity) - (b.position?.offset ?? Infinity));
  const lines = [...new Set(ordered.map((problem) => problemLine(file, problem)))];
  if (lines.length === 1) return mgError('MG_CONFIG_INVALID', lines[0]!);
  const shown = lines.slice(0, MAX_REPORTED);
  const more = lines.length > shown.length ? [`... and ${lines.length - shown.length} more`] : [];
  return mgError('MG_CONFIG_INVALID', [`${lines.length} problems in the configuration:`, ...shown, ...more].join('\n  '));
}

export function problemLine(file: string, problem: PlacedProblem): string {
  const field = problem.path.length === 0 ? '' : `${formatPath(problem.path)}: `;
  const where = problem.position === null ? '' : ` (line ${problem.position.line}, column ${problem.position.column})`;
  return `${file}: ${field}${problem.message}${where}`;
}

/** `['upstream','roles','bad-name']` → `upstream.roles["bad-name"]`, as the YAML would be navigated. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string' && /^[A-Za-z_$][\w$]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}
