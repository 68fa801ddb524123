/**
 * meshgate's own bare repository under the work directory: fetch the configured ref, check
 * a commit's signature, and write one commit's policy directory into a fresh directory that
 * appears whole (renamed into place) or not at all.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GitFailure, lastLines, runGit, type GitResult } from './git.ts';
import { allowedSignersText } from './signers.ts';

/** Where each fetch lands; the ref itself is the remote's business. */
const FETCHED = 'refs/meshgate/fetched';
/** The last commit meshgate applied, so a restart with the remote unreachable still has a policy. */
const APPLIED = 'refs/meshgate/applied';

/** A commit that must not be applied, for a reason that will not change by fetching again. */
export class CommitRefused extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'CommitRefused';
  }
}

export interface RepositoryOptions {
  readonly workDir: string;
  readonly url: string;
  readonly ref: string;
  /** Inside the repository, without leading ./ or trailing /; '' for its root. */
  readonly path: string;
  readonly timeoutMs: number;
  readonly env: NodeJS.ProcessEnv;
  readonly trustedKeys?: readonly string[];
  readonly signal: AbortSignal;
}

export interface Repository {
  /** Fetches the ref; the commit it names now. Throws GitFailure when the remote cannot be read. */
  fetch(): Promise<string>;
  /** The commit last recorded as applied (kept across restarts), or null. */
  applied(): Promise<string | null>;
  markApplied(commit: string): Promise<void>;
  /** Throws CommitRefused when trusted keys are configured and the commit is not signed by one. */
  verify(commit: string): Promise<void>;
  /** Writes the policy directory of `commit` into a fresh directory and returns its path. */
  checkout(commit: string): Promise<string>;
  /** Removes every checkout except `keep`. */
  prune(keep: string | null): Promise<void>;
  /** Where `to` stands relative to `from` in history. */
  movement(from: string, to: string): Promise<'forward' | 'backward' | 'rewritten'>;
}

export async function openRepository(options: RepositoryOptions): Promise<Repository> {
  const gitDir = join(options.workDir, 'repo.git');
  const checkouts = join(options.workDir, 'checkouts');
  const signers = join(options.workDir, 'allowed_signers');
  const git = (args: readonly string[], extraEnv?: NodeJS.ProcessEnv): Promise<GitResult> =>
    runGit(args, { gitDir, timeoutMs: options.timeoutMs, env: options.env, signal: options.signal, ...(extraEnv === undefined ? {} : { extraEnv }) });
  const succeeds = (args: readonly string[]) => git(args).then(() => true, (error: unknown) => (error instanceof GitFailure && !options.signal.aborted ? false : Promise.reject(error)));

  await mkdir(options.workDir, { recursive: true, mode: 0o700 });
  if (!existsSync(join(gitDir, 'HEAD'))) await git(['init', '--bare', '--quiet']);
  // Nothing is applied yet in this process: what an earlier one left (or half-wrote) goes.
  await rm(checkouts, { recursive: true, force: true });
  await mkdir(checkouts, { recursive: true, mode: 0o700 });
  if (options.trustedKeys !== undefined) await writeFile(signers, allowedSignersText(options.trustedKeys), { mode: 0o600 });

  const commitOf = async (ref: string): Promise<string | null> => {
    try {
      return (await git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`])).stdout.trim();
    } catch (error) {
      if (error instanceof GitFailure && !options.signal.aborted) return null;
      throw error;
    }
  };

  return {
    async fetch() {
      // `--` ends the options: a URL can never be read as one. `+`: a force-push is followed (docs/policy-git.md).
      await git(['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--no-recurse-submodules', '--no-auto-gc', '--', options.url, `+${options.ref}:${FETCHED}`]);
      const commit = await commitOf(FETCHED);
      if (commit === null) throw new GitFailure(['fetch'], null, `${options.ref} does not name a commit`, false);
      return commit;
    },
    applied: () => commitOf(APPLIED),
    async markApplied(commit) {
      await git(['update-ref', APPLIED, commit]);
    },
    async verify(commit) {
      if (options.trustedKeys === undefined) return;
      const header = (await git(['cat-file', 'commit', commit])).stdout.split('\n\n', 1)[0] ?? '';
      const signature = /^gpgsig (.*)$/m.exec(header)?.[1];
      if (signature === undefined) throw new CommitRefused('the commit is not signed; policy.git.trustedKeys requires a signature by a trusted SSH key');
      // An OpenPGP or X.509 signature would be checked against whatever keyring this host has: refused outright.
      if (!signature.startsWith('-----BEGIN SSH SIGNATURE-----')) throw new CommitRefused('the commit carries an OpenPGP or X.509 signature; only SSH signatures by policy.git.trustedKeys are accepted');
      const verify = ['-c', 'gpg.format=ssh', '-c', `gpg.ssh.allowedSignersFile=${signers}`, '-c', 'gpg.program=/bin/false', '-c', 'gpg.x509.program=/bin/false', 'verify-commit', commit];
      try {
        await git(verify);
      } catch (error) {
        if (!(error instanceof GitFailure) || options.signal.aborted || error.timedOut) throw error;
        throw new CommitRefused(`the commit's signature is not by a key in policy.git.trustedKeys (${lastLines(error.stderr) || 'verification failed'})`);
      }
    },
    async checkout(commit) {
      const tree = `${commit}:${options.path}`;
      const type = await git(['cat-file', '-t', tree]).then((r) => r.stdout.trim(), () => 'missing');
      if (type !== 'tree') throw new CommitRefused(`${options.path === '' ? 'the repository root' : options.path} is not a directory at this commit (policy.git.path)`);
      const dir = join(checkouts, commit);
      const partial = `${dir}.partial-${randomBytes(4).toString('hex')}`;
      const index = `${partial}.index`;
      await mkdir(partial, { mode: 0o700 });
      try {
        // A private index and work tree per checkout: the bare repository itself never has one.
        const env = { GIT_INDEX_FILE: index };
        await git([`--work-tree=${partial}`, 'read-tree', tree], env);
        await git([`--work-tree=${partial}`, 'checkout-index', '--all', '--force'], env);
        await rm(dir, { recursive: true, force: true });
        await rename(partial, dir);
        return dir;
      } finally {
        await rm(index, { force: true });
        await rm(partial, { recursive: true, force: true });
      }
    },
    async prune(keep) {
      for (const name of await readdir(checkouts)) {
        if (name !== keep) await rm(join(checkouts, name), { recursive: true, force: true });
      }
    },
    async movement(from, to) {
      if (await succeeds(['merge-base', '--is-ancestor', from, to])) return 'forward';
      if (await succeeds(['merge-base', '--is-ancestor', to, from])) return 'backward';
      return 'rewritten';
    },
  };
}
