/**
 * What a MariaDB benchmark through meshgate needs, set up once: a database of its own with a
 * role and the role's login account (unique names per run: tests, the demo or another
 * benchmark may share this MariaDB), a CA with a server certificate and a client SVID, an
 * ALLOW policy for the client's namespace, and meshgate configurations (mTLS listener,
 * policy, audit file, tagging) written beside them. Used by bench:mysql and bench:soak.
 */
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import { provision, type ProvisionedAccount } from '../src/demo/provision.ts';
import { initCa, issueServerCert, issueSvid } from '../src/identity/ca.ts';
import type { ClientPems } from './load.ts';

export const MARIADB = { host: '127.0.0.1', port: 3306, user: 'root', password: '' };
export const TRUST_DOMAIN = 'bench.meshgate.local';

/** Starts a bench child (a relay) and waits for its `ready <port>` line. */
export async function startChild(script: string, args: string[], nodeFlags: string[] = []): Promise<{ child: ChildProcess; port: number; metricsPort: number | null }> {
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', join(import.meta.dirname, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  let metricsPort: number | null = null;
  for await (const line of lines) {
    const metrics = /^metrics (\d+)$/.exec(line);
    if (metrics) metricsPort = Number(metrics[1]);
    const match = /^ready (\d+)$/.exec(line);
    if (match) return { child, port: Number(match[1]), metricsPort };
  }
  throw new Error(`${script} exited before it was ready`);
}

/**
 * A CA under `dir`/ca, meshgate's server certificate and the load generator's SVID
 * (spiffe://bench.meshgate.local/ns/<namespace>/sa/loadgen), their files in `dir`.
 */
export async function benchCertificates(dir: string, namespace = 'bench') {
  const caDir = join(dir, 'ca');
  await initCa({ dir: caDir, trustDomain: TRUST_DOMAIN });
  const server = await issueServerCert({ caDir, outDir: dir });
  const client = await issueSvid({ caDir, spiffeId: `spiffe://${TRUST_DOMAIN}/ns/${namespace}/sa/loadgen`, outDir: dir, name: 'client', ttlSeconds: 7200 });
  return { server, client };
}

/** `dir`/policy/bench.yaml: a policy named `name` with one ALLOW rule (its from, to, id). */
export async function writeBenchPolicy(dir: string, name: string, rule: Readonly<Record<string, unknown>>): Promise<void> {
  await mkdir(join(dir, 'policy'));
  await writeFile(join(dir, 'policy', 'bench.yaml'), stringify({ apiVersion: 'meshgate.dev/v1alpha1', kind: 'AccessPolicy', metadata: { name }, spec: { action: 'ALLOW', rules: [rule] } }));
}

export interface BenchSetupOptions {
  /** The database is `<database>_<run>`, the role `bench_<run>_<role>`. */
  readonly database: string;
  readonly role: string;
  /** The role's privileges on the database, e.g. ['SELECT']. */
  readonly privileges: readonly string[];
  /** Run as root after the database is created; `{db}` stands for its quoted name. */
  readonly setupSql: readonly string[];
}

export interface MeshgateConfigOptions {
  readonly mode: 'starttls' | 'first-byte';
  /** Merged into the audit section (durability, tagStatements, ...). */
  readonly audit?: Readonly<Record<string, unknown>>;
  /** Further top-level sections (tracing, metrics, throttle). */
  readonly sections?: Readonly<Record<string, unknown>>;
}

export interface BenchSetup {
  /** A private temporary directory: certificates, policy, configurations, audit files. */
  readonly dir: string;
  readonly database: string;
  readonly role: string;
  readonly account: ProvisionedAccount;
  readonly server: { readonly certPath: string; readonly keyPath: string };
  readonly client: { readonly certPath: string; readonly keyPath: string; readonly bundlePath: string };
  readonly pems: ClientPems;
  /** Logs in to MariaDB directly as the role's account (add the port). */
  readonly base: { readonly user: string; readonly password: string; readonly database: string; readonly host: string };
  /** Writes `meshgate-<name>.yaml`, auditing to `audit-<name>.jsonl`; returns the config's path. */
  writeMeshgateConfig(name: string, options: MeshgateConfigOptions): Promise<string>;
  /** Drops the database, account and role, and removes the directory. */
  drop(): Promise<void>;
}

export async function benchSetup(options: BenchSetupOptions): Promise<BenchSetup> {
  const run = randomBytes(3).toString('hex');
  const database = `${options.database}_${run}`;
  const role = `bench_${run}_${options.role}`;
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-bench-'));
  const provisioned = await provision(MARIADB, database, { [role]: { privileges: [...options.privileges] } }, options.setupSql).catch(async (error: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw error;
  });
  const drop = async () => {
    try {
      await provisioned.drop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  try {
    const account = provisioned.accounts.get(role)!;
    const { server, client } = await benchCertificates(dir);
    await writeBenchPolicy(dir, 'bench', { from: [{ source: { namespaces: ['bench'] } }], to: [{ mariadb: { databases: [database], role } }] });
    await writeFile(join(dir, 'reader.pw'), account.password, { mode: 0o600 });
    const writeMeshgateConfig = async (name: string, config: MeshgateConfigOptions) => {
      const path = join(dir, `meshgate-${name}.yaml`);
      await writeFile(
        path,
        stringify({
          listener: { port: 0, tls: { mode: config.mode, cert: server.certPath, key: server.keyPath } },
          trust: { bundles: [client.bundlePath], trustDomains: [TRUST_DOMAIN] },
          upstream: { host: MARIADB.host, port: MARIADB.port, roles: { [role]: { user: account.user, password: { file: 'reader.pw' } } } },
          policy: { dir: 'policy' },
          audit: { file: `audit-${name}.jsonl`, ...config.audit },
          ...config.sections,
        }),
      );
      return path;
    };
    const pems = { cert: await readFile(client.certPath), key: await readFile(client.keyPath), ca: await readFile(client.bundlePath) };
    const base = { user: account.user, password: account.password, database, host: '127.0.0.1' };
    return { dir, database, role, account, server, client, pems, base, writeMeshgateConfig, drop };
  } catch (error) {
    await drop();
    throw error;
  }
}
