/**
 * Running the `git` command on meshgate's own repository: execFile (never a shell), a time
 * limit, and settings that keep whatever the fetched repository holds from running anything
 * here — no hooks, no submodules, no `ext::` transport, no system or global git config.
 */
import { execFile } from 'node:child_process';

/** Transports meshgate speaks; `ext::` (runs a command) and the rest are refused by git itself. */
const PROTOCOLS = ['file', 'ssh', 'https'] as const;

/** Given before every git command: what a repository or the environment could otherwise turn on. */
export const SAFE_CONFIG: readonly string[] = [
  'core.hooksPath=/dev/null',
  // A symlink in the policy tree becomes a small file holding its target: the loader never follows it out of the tree.
  'core.symlinks=false',
  'core.fsmonitor=false',
  'submodule.recurse=false',
  'fetch.recurseSubmodules=false',
  'protocol.allow=never',
  ...PROTOCOLS.map((p) => `protocol.${p}.allow=always`),
  'gc.auto=0',
  'maintenance.auto=false',
  'advice.detachedHead=false',
].flatMap((setting) => ['-c', setting]);

export interface GitResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** A git command that did not succeed: exit code (or signal, or timeout) and what it said. */
export class GitFailure extends Error {
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly timedOut: boolean,
  ) {
    super(`git ${args.find((a) => !a.startsWith('-') && !a.includes('=')) ?? ''} failed: ${timedOut ? 'timed out' : lastLines(stderr) || `exit ${String(exitCode)}`}`);
    this.name = 'GitFailure';
  }
}

/** The last few lines of git's stderr: where it says what went wrong, without a page of progress. */
export function lastLines(text: string, lines = 3, chars = 500): string {
  const kept = text.split(/\r?\n|\r/).map((l) => l.trim()).filter((l) => l !== '').slice(-lines).join(' | ');
  return kept.length > chars ? `${kept.slice(0, chars)}…` : kept;
}

/**
 * The environment git runs in: the process's, minus every GIT_* variable that could point it
 * at another repository, index or config (GIT_SSH_COMMAND and GIT_SSH stay: how ssh is run is
 * the operator's choice), never prompting, and ssh in batch mode unless the operator said otherwise.
 */
export function gitEnvironment(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(base)) {
    if (key.startsWith('GIT_') && key !== 'GIT_SSH_COMMAND' && key !== 'GIT_SSH') continue;
    env[key] = value;
  }
  // git finds ssh and ssh-keygen on PATH; an environment given without one (tests, embedders) keeps the process's.
  env['PATH'] ??= process.env['PATH'];
  env['GIT_TERMINAL_PROMPT'] = '0';
  env['GIT_CONFIG_NOSYSTEM'] = '1';
  env['GIT_CONFIG_GLOBAL'] = '/dev/null';
  env['GIT_OPTIONAL_LOCKS'] = '0';
  if (env['GIT_SSH_COMMAND'] === undefined && env['GIT_SSH'] === undefined) env['GIT_SSH_COMMAND'] = 'ssh -o BatchMode=yes';
  return env;
}

export interface RunGitOptions {
  readonly gitDir: string;
  readonly timeoutMs: number;
  readonly env: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
  /** Extra environment for this one command (e.g. a private index file). */
  readonly extraEnv?: NodeJS.ProcessEnv;
}

/** Git's output is small here (refs, one commit); anything larger is a mistake, not a policy. */
const MAX_OUTPUT = 16 * 1024 * 1024;

export function runGit(args: readonly string[], options: RunGitOptions): Promise<GitResult> {
  const full = [...SAFE_CONFIG, `--git-dir=${options.gitDir}`, ...args];
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      full,
      {
        env: { ...options.env, ...options.extraEnv },
        timeout: options.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: MAX_OUTPUT,
        windowsHide: true,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ stdout, stderr });
          return;
        }
        const failed = error as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
        if (failed.code === 'ENOENT') {
          reject(new GitFailure(args, null, 'the git command is not installed (or not on PATH)', false));
          return;
        }
        const timedOut = failed.killed === true && options.signal?.aborted !== true;
        reject(new GitFailure(args, typeof failed.code === 'number' ? failed.code : null, String(stderr), timedOut));
      },
    );
  });
}
