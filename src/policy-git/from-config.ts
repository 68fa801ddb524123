/** The sync's options from a validated `policy.git` section (paths already absolute). */
import { readFileSync } from 'node:fs';
import type { PolicyGitConfig } from '../config/schema.ts';
import { mgError } from '../errors/index.ts';
import { parseDuration } from '../identity/index.ts';
import { parseTrustedKeysText } from './signers.ts';
import type { GitPolicySyncOptions } from './sync.ts';

export function gitPolicyOptions(git: PolicyGitConfig, env: NodeJS.ProcessEnv = process.env): GitPolicySyncOptions {
  if (git.workDir === undefined) throw new TypeError('policy.git.workDir is set by the config loader');
  return {
    url: git.url,
    ref: git.ref,
    path: git.path,
    intervalMs: parseDuration(git.interval, 'policy.git.interval') * 1000,
    timeoutMs: parseDuration(git.timeout, 'policy.git.timeout') * 1000,
    workDir: git.workDir,
    env,
    ...(git.trustedKeys === undefined ? {} : { trustedKeys: trustedKeysOf(git.trustedKeys) }),
  };
}

function trustedKeysOf(keys: NonNullable<PolicyGitConfig['trustedKeys']>): readonly string[] {
  if (Array.isArray(keys)) return keys;
  const { file } = keys as { file: string };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw mgError('MG_CONFIG_INVALID', `policy.git.trustedKeys: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'}); check the path and that meshgate may read it`);
  }
  return parseTrustedKeysText(text, `policy.git.trustedKeys file ${file}`);
}
