/** Reads, validates and resolves the configuration file: fail fast, name the field and its line. */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { mgError } from '../errors/index.ts';
import { expandEnvReferences, type UnsetReference } from './env-expand.ts';
import { describeIssues, type ConfigProblem } from './describe.ts';
import { configError, placeProblems } from './report.ts';
import { configSchema, type MeshgateConfig, type SecretRef } from './schema.ts';
import { upstreamTlsProblems } from './upstream-tls.ts';
import { noPositions, parseYamlWithPositions, type Locate } from './yaml-positions.ts';

export interface LoadConfigOptions {
  /**
   * Whether the files the configuration names (certificates, trust bundles, the policy
   * directory) must exist; default true. False for tools that read only its shape, such as
   * `policy render istio` in CI, far from the machine meshgate runs on.
   */
  readonly checkFiles?: boolean;
  /** Where `${env:NAME}` references are looked up; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** An unset `${env:NAME}` without fallback: refused (default), or kept as written when only the shape matters (checkFiles false). */
  readonly unsetEnv?: UnsetReference;
}

export function loadConfigFile(path: string, options: LoadConfigOptions = {}): MeshgateConfig {
  if (!existsSync(path)) {
    throw mgError('MG_CONFIG_INVALID', `config file ${path} does not exist; pass --config PATH (see deploy/examples/meshgate.yaml)`);
  }
  return parseConfigText(readFileSync(path, 'utf8'), path, options);
}

/** Validates a configuration file's text; problems carry the line each field is written on. */
export function parseConfigText(text: string, sourcePath: string, options: LoadConfigOptions = {}): MeshgateConfig {
  const parsed = parseYamlWithPositions(text);
  if (!parsed.ok) {
    throw configError(
      sourcePath,
      parsed.problems.map(({ message, position }) => ({ path: [], message: `not valid YAML: ${message}`, position })),
    );
  }
  return validate(parsed.value, sourcePath, parsed.locate, options);
}

/**
 * Validates a configuration given as an object (tests, embedders); problems name the field
 * but no line. Relative paths are taken relative to `sourcePath`'s folder.
 */
export function resolveConfig(raw: unknown, sourcePath: string, options: LoadConfigOptions = {}): MeshgateConfig {
  return validate(raw, sourcePath, noPositions, options);
}

function validate(raw: unknown, sourcePath: string, locate: Locate, options: LoadConfigOptions): MeshgateConfig {
  const checkFiles = options.checkFiles ?? true;
  const expanded = expandEnvReferences(raw, options.env ?? process.env, options.unsetEnv ?? (checkFiles ? 'refuse' : 'keep'));
  if (expanded.problems.length > 0) throw configError(sourcePath, placeProblems(expanded.problems, locate));
  // An empty file is an empty mapping: each missing section is then named on its own.
  const parsed = configSchema.safeParse(expanded.value ?? {}, { reportInput: true });
  if (!parsed.success) throw configError(sourcePath, placeProblems(describeIssues(configSchema, parsed.error.issues), locate));
  const config = parsed.data;
  const problems = crossFieldProblems(config);
  const base = dirname(resolve(sourcePath));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  if (checkFiles) problems.push(...missingFiles(config, abs), ...upstreamTlsProblems(config, abs));
  if (problems.length > 0) throw configError(sourcePath, placeProblems(problems, locate));
  // One place for meshgate's certificate from here on, whichever the file used (the schema
  // allows one): every listener reads config.tls.
  const certificate = certificateOf(config);
  if (certificate !== undefined) config.tls = { cert: abs(certificate.cert), key: abs(certificate.key) };
  if (config.listener?.tls.cert !== undefined) config.listener.tls.cert = abs(config.listener.tls.cert);
  if (config.listener?.tls.key !== undefined) config.listener.tls.key = abs(config.listener.tls.key);
  config.trust.bundles = config.trust.bundles.map(abs);
  if (config.policy.dir !== undefined) config.policy.dir = abs(config.policy.dir);
  config.audit.file = abs(config.audit.file);
  if (config.audit.signingKey !== undefined) config.audit.signingKey = abs(config.audit.signingKey);
  if (config.signer !== undefined) config.signer.caDir = abs(config.signer.caDir);
  for (const issuer of config.tokens?.issuers ?? []) {
    if ('file' in issuer.jwks) issuer.jwks.file = abs(issuer.jwks.file);
    else if (issuer.jwks.caFile !== undefined) issuer.jwks.caFile = abs(issuer.jwks.caFile);
  }
  for (const account of Object.values(config.upstream?.roles ?? {})) {
    if ('file' in account.password) account.password = { file: abs(account.password.file) };
  }
  const upstreamTls = config.upstream?.tls;
  if (upstreamTls !== undefined) Object.assign(upstreamTls, { ca: abs(upstreamTls.ca), cert: abs(upstreamTls.cert), key: abs(upstreamTls.key) });
  const credentials = config.upstream?.credentials;
  if (credentials !== undefined && 'file' in credentials.admin.password) credentials.admin.password = { file: abs(credentials.admin.password.file) };
  if (config.state.postgres === undefined) config.state.embedded = { dir: abs(config.state.embedded?.dir ?? 'state') };
  const git = config.policy.git;
  if (git !== undefined) {
    // Beside the leases by default: a directory meshgate already owns and may write.
    git.workDir = git.workDir !== undefined ? abs(git.workDir) : join(config.state.embedded!.dir, 'policy-git');
    if (git.trustedKeys !== undefined && 'file' in git.trustedKeys) git.trustedKeys = { file: abs(git.trustedKeys.file) };
  }
  if (config.state.postgres !== undefined && 'file' in config.state.postgres.url) config.state.postgres.url = { file: abs(config.state.postgres.url.file) };
  const exportTo = config.audit.export?.postgres;
  if (exportTo !== undefined && 'file' in exportTo.url) exportTo.url = { file: abs(exportTo.url.file) };
  const headers = config.tracing?.otlp.headers ?? {};
  for (const [name, value] of Object.entries(headers)) if (typeof value === 'object' && 'file' in value) headers[name] = { file: abs(value.file) };
  return Object.freeze(config) as MeshgateConfig;
}

/** meshgate's certificate as the file names it: `tls`, or the older `listener.tls` (never both: the schema says so). */
function certificateOf(config: MeshgateConfig): { cert: string; key: string } | undefined {
  if (config.tls !== undefined) return config.tls;
  const { cert, key } = config.listener?.tls ?? {};
  return cert === undefined || key === undefined ? undefined : { cert, key };
}

/** Rules no single field can check. */
function crossFieldProblems(config: MeshgateConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const credentials = config.upstream?.credentials;
  if (config.upstream !== undefined && credentials === undefined && Object.keys(config.upstream.roles).length === 0) {
    problems.push({
      path: ['upstream'],
      message:
        'give meshgate an admin account for dynamic credentials (upstream.credentials.admin: { user, password: { file: … } }), or static accounts per role (upstream.roles)',
    });
  }
  if (config.policy.git !== undefined && config.policy.git.workDir === undefined && config.state.postgres !== undefined) {
    problems.push({
      path: ['policy', 'git'],
      message: 'needs workDir with state.postgres: a writable directory of this replica\'s own for the policy clone, e.g. workDir: /var/lib/meshgate/policy-git',
    });
  }
  if (credentials?.rotateAdminEvery !== undefined && !('file' in credentials.admin.password)) {
    problems.push({
      path: ['upstream', 'credentials', 'rotateAdminEvery'],
      message: 'needs admin.password from a file, where meshgate writes the new password: use password: { file: … }',
    });
  }
  return problems;
}

/** Files meshgate reads at start, checked now so a typo fails here, with its line, not later. */
function missingFiles(config: MeshgateConfig, abs: (p: string) => string): ConfigProblem[] {
  const certificates = 'create it with `meshgate ca issue-server`';
  const certificate = certificateOf(config);
  // Named where the file wrote it, so the problem points at that line.
  const at = config.tls !== undefined ? ['tls'] : ['listener', 'tls'];
  type Check = [PropertyKey[], string, string];
  const trustedKeys = config.policy.git?.trustedKeys;
  const gitKeysFile = trustedKeys !== undefined && 'file' in trustedKeys ? trustedKeys.file : undefined;
  const checks: Check[] = [
    ...(certificate === undefined ? [] : [[[...at, 'cert'], certificate.cert, certificates] satisfies Check, [[...at, 'key'], certificate.key, certificates] satisfies Check]),
    ...config.trust.bundles.map(
      (b, i): [PropertyKey[], string, string] => [['trust', 'bundles', i], b, "use meshgate's CA bundle (`meshgate ca init`) or Istio's root-cert.pem"],
    ),
    ...(config.policy.dir === undefined ? [] : [[['policy', 'dir'], config.policy.dir, 'create it with your policy files (see deploy/examples/policy)'] satisfies Check]),
    ...(gitKeysFile === undefined ? [] : [[['policy', 'git', 'trustedKeys', 'file'], gitKeysFile, 'write the SSH public keys whose signatures are trusted there, one a line'] satisfies Check]),
    ...(config.audit.signingKey === undefined ? [] : [[['audit', 'signingKey'], config.audit.signingKey, 'create it with `meshgate audit keygen --out PATH`'] satisfies Check]),
  ];
  return checks
    .filter(([, file]) => !existsSync(abs(file)))
    .map(([path, file, fix]) => {
      const resolved = abs(file) === file ? '' : ` (${abs(file)})`;
      return { path, message: `${file}${resolved} does not exist; ${fix}` };
    });
}

/** Reads a secret from where the config points; the value never appears in errors. */
export function readSecret(ref: SecretRef, field: string, env: NodeJS.ProcessEnv = process.env): string {
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined) {
      throw mgError('MG_CONFIG_INVALID', `${field}: environment variable ${ref.env} is not set; set it, or use ${field.split('.').pop() ?? 'password'}: { file: … }`);
    }
    return value;
  }
  try {
    return readFileSync(ref.file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw mgError('MG_CONFIG_INVALID', `${field}: cannot read ${ref.file} (${(error as NodeJS.ErrnoException).code ?? 'error'}); check the path and that meshgate may read it`);
  }
}
