/**
 * `meshgate policy init`: a starting policy directory with its tests, so a team begins from
 * files that load, pass `policy test`, and say what to edit. Never replaces a file unasked.
 */
import { lstat, mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { mgError } from '../../errors/index.ts';
import { policyFileNames } from '../../policy/index.ts';
import { UsageError, optionalString, requireString, type CliCommand, type OptionValues } from '../command.ts';
import { POLICY_INIT, POLICY_INIT_DEFAULTS } from '../specs/policy-init.ts';
import { policyTemplate, sampleNamespace, TESTS_FILE, type PolicyTemplateOptions } from './policy-template.ts';

// A Kubernetes namespace is a DNS label; the trust domain follows the SPIFFE ID spec.
const LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
// A database name the roles `<name>_writer`/`_reader` can be made of (64 characters at most).
const DATABASE = /^[A-Za-z0-9_$]{1,57}$/;
const GOOGLE_PROJECT = /^[a-z][-a-z0-9]{4,28}[a-z0-9]$/;

function option(values: OptionValues, name: string, fallback: string, pattern: RegExp, what: string): string {
  const value = optionalString(values, name) ?? fallback;
  if (!pattern.test(value)) throw new UsageError(`--${name}: ${JSON.stringify(value)} is not ${what}`);
  return value;
}

/** Whether an Istio namespace pattern (exact, `p*`, `*s`) covers `namespace`. */
function covers(pattern: string, namespace: string): boolean {
  if (pattern.endsWith('*')) return namespace.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith('*')) return namespace.endsWith(pattern.slice(1));
  return pattern === namespace;
}

function parseOptions(values: OptionValues): PolicyTemplateOptions {
  const trustDomain = option(values, 'trust-domain', POLICY_INIT_DEFAULTS.trustDomain, TRUST_DOMAIN, 'a trust domain (lower-case letters, digits, ".", "-", "_")');
  const namespace = option(values, 'namespace', POLICY_INIT_DEFAULTS.namespace, LABEL, 'a Kubernetes namespace name');
  const database = option(values, 'database', POLICY_INIT_DEFAULTS.database, DATABASE, 'a MariaDB database name of 1-57 of A-Z a-z 0-9 _ $');
  const googleProject = option(values, 'google-project', POLICY_INIT_DEFAULTS.googleProject, GOOGLE_PROJECT, 'a Google Cloud project id');
  const list = optionalString(values, 'deny-namespaces');
  const denyNamespaces = list === undefined ? [...POLICY_INIT_DEFAULTS.denyNamespaces] : list.split(',').map((n) => n.trim());
  for (const pattern of denyNamespaces) {
    // One `*` at either end (Istio's forms); the namespace it stands for must be a real one.
    const shape = /^\*?[^*]+$|^[^*]+\*$/.test(pattern) && LABEL.test(sampleNamespace(pattern));
    if (!shape) {
      throw new UsageError(`--deny-namespaces: ${JSON.stringify(pattern)} is not a namespace name or a pattern like dev-* or *-test (comma-separated, no spaces needed)`);
    }
    if (covers(pattern, namespace)) throw new UsageError(`--deny-namespaces: ${JSON.stringify(pattern)} would deny --namespace ${namespace}, the namespace the policy grants`);
  }
  if (new Set(denyNamespaces).size !== denyNamespaces.length) throw new UsageError('--deny-namespaces: a namespace is listed twice');
  return { trustDomain, namespace, denyNamespaces, database, googleProject };
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

const init: CliCommand = {
  ...POLICY_INIT,
  async run(values, _positionals, io) {
    const dir = requireString(values, 'dir');
    const options = parseOptions(values);
    const force = values.force === true;
    const absolute = resolve(io.cwd, dir);
    const files = policyTemplate(options);
    // All or nothing: a half-written directory would load with tests that no longer match it.
    const present: string[] = [];
    for (const file of files) if (await exists(join(absolute, file.path))) present.push(join(dir, file.path));
    if (present.length > 0 && !force) {
      throw mgError('MG_POLICY_INIT_EXISTS', `${present.join(', ')} already exist${present.length === 1 ? 's' : ''}; nothing was written. Pass --force to replace ${present.length === 1 ? 'it' : 'them'}, or choose another --dir`);
    }
    for (const file of files) {
      const path = join(absolute, file.path);
      await mkdir(dirname(path), { recursive: true });
      // Without --force, `wx` also refuses a file that appeared since the check above.
      await writeFile(path, file.text, { flag: force ? 'w' : 'wx' });
      io.out(`wrote ${join(dir, file.path)}`);
    }
    // The loader reads every *.yaml beside ours: the tests were written for ours alone.
    const written = new Set(files.map((f) => f.path));
    const others = policyFileNames(await readdir(absolute)).filter((n) => !written.has(n));
    if (others.length > 0) io.out(`note: ${dir} also holds ${others.join(', ')}; the policy includes ${others.length === 1 ? 'it' : 'them'}, so the tests may need cases for ${others.length === 1 ? 'it' : 'them'}`);
    io.out('');
    io.out(`MariaDB roles the policy names: ${options.database}_writer (read-write), ${options.database}_reader (read-only); ${join(dir, 'README.md')} has their GRANT statements.`);
    io.out('Edit the files (each says what to change), then check them:');
    io.out(`  meshgate policy test ${dir} --tests ${join(dir, dirname(TESTS_FILE))}`);
    return 0;
  },
};

export const policyInitCommand: CliCommand = init;
