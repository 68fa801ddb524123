/** Reads, validates and resolves the configuration file: fail fast, name the field. */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { mgError } from '../errors/index.ts';
import { configSchema, type MeshgateConfig, type SecretRef } from './schema.ts';

export function loadConfigFile(path: string): MeshgateConfig {
  if (!existsSync(path)) {
    throw mgError('MG_CONFIG_INVALID', `config file ${path} does not exist; pass --config PATH (see deploy/examples/meshgate.yaml)`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (error) {
    const where = error instanceof YAMLParseError && error.linePos ? ` line ${error.linePos[0].line}` : '';
    throw mgError('MG_CONFIG_INVALID', `${path}${where}: not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  return resolveConfig(raw, path);
}

/** Validates a parsed document; relative paths are taken relative to the file's folder. */
export function resolveConfig(raw: unknown, sourcePath: string): MeshgateConfig {
  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) throw mgError('MG_CONFIG_INVALID', describeIssues(sourcePath, parsed.error.issues));
  const config = parsed.data;
  const base = dirname(resolve(sourcePath));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  config.listener.tls.cert = abs(config.listener.tls.cert);
  config.listener.tls.key = abs(config.listener.tls.key);
  config.trust.bundles = config.trust.bundles.map(abs);
  config.policy.dir = abs(config.policy.dir);
  config.audit.file = abs(config.audit.file);
  if (config.signer !== undefined) config.signer.caDir = abs(config.signer.caDir);
  for (const issuer of config.tokens?.issuers ?? []) {
    if ('file' in issuer.jwks) issuer.jwks.file = abs(issuer.jwks.file);
    else if (issuer.jwks.caFile !== undefined) issuer.jwks.caFile = abs(issuer.jwks.caFile);
  }
  for (const account of Object.values(config.upstream.roles)) {
    if ('file' in account.password) account.password = { file: abs(account.password.file) };
  }
  const credentials = config.upstream.credentials;
  if (credentials !== undefined && 'file' in credentials.admin.password) credentials.admin.password = { file: abs(credentials.admin.password.file) };
  if (credentials === undefined && Object.keys(config.upstream.roles).length === 0) {
    throw mgError(
      'MG_CONFIG_INVALID',
      `${sourcePath}: upstream: give meshgate an admin account for dynamic credentials (upstream.credentials.admin), or static accounts per role (upstream.roles)`,
    );
  }
  if (credentials?.rotateAdminEvery !== undefined && !('file' in credentials.admin.password)) {
    throw mgError('MG_CONFIG_INVALID', `${sourcePath}: upstream.credentials.rotateAdminEvery needs admin.password from a file, where meshgate writes the new password`);
  }
  if (config.state.postgres === undefined) config.state.embedded = { dir: abs(config.state.embedded?.dir ?? 'state') };
  if (config.state.postgres !== undefined && 'file' in config.state.postgres.url) config.state.postgres.url = { file: abs(config.state.postgres.url.file) };
  const missing = [
    ['listener.tls.cert', config.listener.tls.cert],
    ['listener.tls.key', config.listener.tls.key],
    ...config.trust.bundles.map((b, i) => [`trust.bundles[${i}]`, b] as const),
    ['policy.dir', config.policy.dir],
  ].filter(([, file]) => !existsSync(file!));
  if (missing.length > 0) {
    const lines = missing.map(([field, file]) => `${field}: ${file} does not exist`);
    throw mgError('MG_CONFIG_INVALID', `${sourcePath}: ${lines.join('; ')} (create certificates with \`meshgate ca init\` / \`meshgate ca issue-server\`)`);
  }
  return Object.freeze(config) as MeshgateConfig;
}

function describeIssues(sourcePath: string, issues: readonly z.core.$ZodIssue[]): string {
  const lines = issues.slice(0, 5).map((issue) => {
    const field = issue.path.length === 0 ? '(top level)' : issue.path.map(String).join('.');
    return `${field}: ${issue.message}`;
  });
  const more = issues.length > 5 ? ` (and ${issues.length - 5} more)` : '';
  return `${sourcePath}: ${lines.join('; ')}${more}`;
}

/** Reads a secret from where the config points; the value never appears in errors. */
export function readSecret(ref: SecretRef, field: string, env: NodeJS.ProcessEnv = process.env): string {
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined) {
      throw mgError('MG_CONFIG_INVALID', `${field}: environment variable ${ref.env} is not set`);
    }
    return value;
  }
  try {
    return readFileSync(ref.file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw mgError('MG_CONFIG_INVALID', `${field}: cannot read ${ref.file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
