/** Policy directories on disk for the `policy diff` tests: each a fresh temp dir of YAML files. */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicyDir } from '../../../src/policy/loader.ts';
import type { LoadedPolicy } from '../../../src/policy/types.ts';

export interface Workspace {
  readonly dir: string;
  /** Writes `files` (name → YAML) into `<dir>/<name>` and returns that directory. */
  policyDir(name: string, files: Readonly<Record<string, string>>): Promise<string>;
  load(name: string, files: Readonly<Record<string, string>>): Promise<LoadedPolicy>;
  cleanup(): Promise<void>;
}

export async function workspace(): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), 'mgt_policy_diff_'));
  const policyDir = async (name: string, files: Readonly<Record<string, string>>): Promise<string> => {
    const path = join(dir, name);
    await mkdir(path, { recursive: true });
    for (const [file, text] of Object.entries(files)) await writeFile(join(path, file), text);
    return path;
  };
  return {
    dir,
    policyDir,
    load: async (name, files) => loadPolicyDir(await policyDir(name, files)),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** One AccessPolicy document; `rules` is YAML flow text for spec.rules. */
export function doc(name: string, action: 'ALLOW' | 'DENY' | 'AUDIT', rules: string): string {
  return `apiVersion: meshgate.dev/v1alpha1\nkind: AccessPolicy\nmetadata: { name: ${name} }\nspec:\n  action: ${action}\n  rules: ${rules}\n`;
}
