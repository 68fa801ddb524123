/**
 * Just enough of Docker's build semantics to check meshgate's Dockerfile and to repeat its
 * steps without a container runtime: instructions per stage (continuation lines joined,
 * comments dropped), exec-form arguments, COPY's flags, and the .dockerignore rules that decide
 * what the build context holds (moby's patternmatcher: `*`, `?`, `**`, `!` exceptions, the last
 * matching rule wins, a rule matching a directory matches everything inside it).
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly line: number;
}

export interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

export interface ParsedDockerfile {
  /** ARGs before the first FROM: the ones FROM lines may use. */
  readonly globalArgs: ReadonlyMap<string, string | undefined>;
  readonly stages: readonly Stage[];
}

export function parseDockerfile(text: string): ParsedDockerfile {
  const instructions: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) return;
    if (pending === '') start = index + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      return;
    }
    const whole = (pending + line).trim();
    pending = '';
    if (whole === '') return;
    const space = whole.search(/\s/);
    instructions.push({ op: whole.slice(0, space).toUpperCase(), args: whole.slice(space).trim(), line: start });
  });
  const globalArgs = new Map<string, string | undefined>();
  const stages: { from: string; name: string | undefined; instructions: Instruction[] }[] = [];
  for (const instruction of instructions) {
    if (instruction.op === 'FROM') {
      const match = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      if (match === null) throw new Error(`Dockerfile line ${instruction.line}: cannot read FROM ${instruction.args}`);
      stages.push({ from: match[1]!, name: match[2], instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.op !== 'ARG') throw new Error(`Dockerfile line ${instruction.line}: only ARG may precede the first FROM`);
      const [name, value] = parseArg(instruction.args);
      globalArgs.set(name, value);
    } else {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return { globalArgs, stages };
}

/** `NAME` or `NAME=default` (quotes removed). */
export function parseArg(args: string): [string, string | undefined] {
  const eq = args.indexOf('=');
  if (eq < 0) return [args.trim(), undefined];
  return [args.slice(0, eq).trim(), unquote(args.slice(eq + 1).trim())];
}

/** `ENV A=1 B="two words"` and LABEL's `a.b="c"` (the key=value form) as pairs. */
export function parseEnv(args: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const match of args.matchAll(/([\w.-]+)=("(?:[^"\\]|\\.)*"|\S*)/g)) env.set(match[1]!, unquote(match[2]!));
  return env;
}

/** LABEL's key="value" pairs. */
export const parseLabels = parseEnv;

function unquote(value: string): string {
  return /^".*"$/.test(value) ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value;
}

/** ENTRYPOINT, CMD, VOLUME in exec (JSON array) form; shell form is a failure here. */
export function execForm(instruction: Instruction): string[] {
  const parsed: unknown = JSON.parse(instruction.args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) {
    throw new Error(`Dockerfile line ${instruction.line}: ${instruction.op} must be a JSON array of strings`);
  }
  return parsed as string[];
}

export interface CopyInstruction {
  readonly from: string | undefined;
  readonly sources: readonly string[];
  readonly dest: string;
}

export function parseCopy(instruction: Instruction): CopyInstruction {
  const words = instruction.args.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift()!;
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
  }
  if (words.length < 2) throw new Error(`Dockerfile line ${instruction.line}: COPY needs a source and a destination`);
  return { from, sources: words.slice(0, -1), dest: words.at(-1)! };
}

export interface IgnoreRule {
  readonly negate: boolean;
  readonly pattern: string;
  readonly regexp: RegExp;
}

export function parseDockerignore(text: string): IgnoreRule[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = (negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, '');
      return { negate, pattern, regexp: globToRegExp(pattern) };
    });
}

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      i++;
      if (pattern[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else {
        re += '.*';
      }
    } else if (c === '*') {
      re += '[^/]*';
    } else if (c === '?') {
      re += '[^/]';
    } else {
      re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`);
}

/** Whether .dockerignore keeps `path` (relative, `/`-separated) out of the build context. */
export function isIgnored(rules: readonly IgnoreRule[], path: string): boolean {
  const parts = path.split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const rule of rules) {
    if (prefixes.some((p) => rule.regexp.test(p))) ignored = !rule.negate;
  }
  return ignored;
}

/**
 * The files (not directories) the build context holds, relative to `root`. An ignored
 * directory is not entered unless an exception rule could reach inside it.
 */
export async function contextFiles(root: string, rules: readonly IgnoreRule[]): Promise<string[]> {
  const files: string[] = [];
  const mayReenter = (dir: string) => rules.some((r) => r.negate && (r.pattern.startsWith(`${dir}/`) || r.pattern.startsWith('*')));
  const walk = async (rel: string): Promise<void> => {
    for (const entry of (await readdir(join(root, rel))).sort()) {
      const path = rel === '' ? entry : `${rel}/${entry}`;
      const stat = await lstat(join(root, path));
      if (stat.isDirectory()) {
        if (!isIgnored(rules, path) || mayReenter(path)) await walk(path);
      } else if (!isIgnored(rules, path)) {
        files.push(path);
      }
    }
  };
  await walk('');
  return files;
}

export async function readDockerfile(root: string): Promise<{ dockerfile: ParsedDockerfile; ignore: IgnoreRule[] }> {
  const dockerfile = parseDockerfile(await readFile(join(root, 'Dockerfile'), 'utf8'));
  const ignore = parseDockerignore(await readFile(join(root, '.dockerignore'), 'utf8'));
  return { dockerfile, ignore };
}
