/**
 * A real policy repository on disk: a bare `origin.git` (what meshgate fetches, by file://)
 * and a working clone that commits and pushes, with SSH keys for signed commits. Every git
 * command here ignores the machine's own git config, as meshgate does.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadPolicyDir } from '../../src/policy/index.ts';
import type { LoadedPolicy } from '../../src/policy/index.ts';
import { subjectFromPrincipal } from '../../src/policy/index.ts';
import type { PolicyRevision } from '../../src/policy-git/index.ts';

const ENV: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('GIT_'))),
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'Policy Author',
  GIT_AUTHOR_EMAIL: 'author@example.com',
  GIT_COMMITTER_NAME: 'Policy Author',
  GIT_COMMITTER_EMAIL: 'author@example.com',
};

/** The policy the tests push: the orders service gets `role` on database shop. */
export function ordersPolicy(role: string): string {
  return `apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: orders }
spec:
  action: ALLOW
  rules:
    - id: shop
      from: [{ source: { principals: ["cluster.local/ns/shop/sa/orders"] } }]
      to: [{ mariadb: { databases: [shop], role: ${role} } }]
`;
}

export const BROKEN = ordersPolicy('shop_writer').replace('action: ALLOW', 'action: MAYBE');

export class PolicyRepo {
  readonly root = mkdtempSync(join(tmpdir(), 'mgt_policygit_'));
  readonly origin = join(this.root, 'origin.git');
  readonly work = join(this.root, 'work');
  readonly url = `file://${this.origin}`;
  readonly workDir = join(this.root, 'meshgate');

  constructor() {
    this.gitIn(this.root, 'init', '--quiet', '--bare', '--initial-branch=main', this.origin);
    this.gitIn(this.root, 'init', '--quiet', '--initial-branch=main', this.work);
    this.git('remote', 'add', 'origin', this.origin);
  }

  gitIn(cwd: string, ...args: string[]): string {
    return execFileSync('git', args, { cwd, env: ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  }

  git(...args: string[]): string {
    return this.gitIn(this.work, ...args);
  }

  write(path: string, text: string): void {
    mkdirSync(dirname(join(this.work, path)), { recursive: true });
    writeFileSync(join(this.work, path), text);
  }

  /** Writes the files, commits (signed with `signingKey` when given), pushes; the new commit id. */
  commit(files: Record<string, string>, options: { message?: string; signingKey?: string; push?: boolean } = {}): string {
    for (const [path, text] of Object.entries(files)) this.write(path, text);
    this.git('add', '--all');
    const sign = options.signingKey === undefined ? [] : ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${options.signingKey}`];
    this.git(...sign, 'commit', '--quiet', '--allow-empty', ...(options.signingKey === undefined ? [] : ['-S']), '-m', options.message ?? 'policy change');
    if (options.push !== false) this.git('push', '--quiet', '--force', 'origin', 'HEAD:main');
    return this.git('rev-parse', 'HEAD');
  }

  /** A new SSH key pair; returns the private key's path and the public key line. */
  sshKey(name: string): { readonly privateKey: string; readonly publicKey: string } {
    const privateKey = join(this.root, `${name}_ed25519`);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', privateKey], { stdio: 'ignore' });
    return { privateKey, publicKey: readFileSync(`${privateKey}.pub`, 'utf8').trim() };
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** An apply as the reload path does it: load the directory, version = commit; records every policy taken. */
export function recordingApply(): { apply: (revision: PolicyRevision) => Promise<void>; taken: LoadedPolicy[]; roleOfOrders(): string | null } {
  const taken: LoadedPolicy[] = [];
  const subject = subjectFromPrincipal('cluster.local/ns/shop/sa/orders');
  return {
    taken,
    apply: async (revision) => {
      taken.push(await loadPolicyDir(revision.dir, { version: revision.commit }));
    },
    roleOfOrders: () => {
      const current = taken.at(-1);
      if (current === undefined) return null;
      const decision = current.evaluate(subject, { engine: 'mysql', database: 'shop' });
      return decision.allow ? decision.role : null;
    },
  };
}
