/**
 * A whole meshgate for integration tests: a CA in a temp dir, certificates for a few
 * workloads, a MariaDB database with roles and role accounts, a policy directory, and
 * meshgate listening on a free port. `stop()` removes all of it.
 */
import { mkdtemp, rm, writeFile, mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../../src/config/load.ts';
import type { MeshgateConfigInput } from '../../src/config/schema.ts';
import { connectAdmin, provision, provisionLeaseAdmin, type Provisioned } from '../../src/demo/provision.ts';
import { initCa, issueServerCert, issueSvid } from '../../src/identity/ca.ts';
import type { Logger } from '../../src/engines/mysql/context.ts';
import { silentLogger } from '../../src/log.ts';
import { startMeshgate, type RunningMeshgate } from '../../src/server.ts';

export const MARIADB = {
  host: process.env.MESHGATE_TEST_MARIADB_HOST ?? '127.0.0.1',
  port: Number(process.env.MESHGATE_TEST_MARIADB_PORT ?? 3306),
  user: process.env.MESHGATE_TEST_MARIADB_USER ?? 'root',
  password: process.env.MESHGATE_TEST_MARIADB_PASSWORD ?? '',
};

export const TRUST_DOMAIN = 'test.meshgate.local';

export interface ClientFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export interface Harness {
  readonly dir: string;
  readonly caDir: string;
  readonly port: number;
  readonly database: string;
  readonly auditFile: string;
  readonly meshgate: RunningMeshgate;
  readonly provisioned: Provisioned;
  /** Certificate files per workload name given to startHarness. */
  readonly clients: Readonly<Record<string, ClientFiles>>;
  /** mysql2 / mariadb `ssl` options for a workload. */
  ssl(workload: string): { cert: Buffer; key: Buffer; ca: Buffer };
  readAudit(): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  /** Short unique name: the database is `mgt_<name>`, roles `<name>_rw` and `<name>_ro`. */
  readonly name: string;
  /** Workload name → SPIFFE ID. */
  readonly workloads: Readonly<Record<string, string>>;
  /** Policy YAML; `{db}`, `{rw}`, `{ro}` are replaced. Default: the standard three rules. */
  readonly policy?: string;
  readonly setupSql?: readonly string[];
  readonly config?: (config: MeshgateConfigInput) => void;
  /**
   * `dynamic`: meshgate gets an admin account (the minimal privileges the README lists) and
   * creates a MariaDB account per identity and role; `static` (default): one account per role.
   */
  readonly credentials?: 'static' | 'dynamic';
  /** Also serve Firestore, forwarding to this emulator (host:port) for this project. */
  readonly firestore?: { readonly emulator: string; readonly project: string };
  /** meshgate's operational log; default silent. */
  readonly log?: Logger;
}

/** The privileges meshgate's admin account needs for dynamic credentials, nothing more. */
export function createAdminAccount(user: string, roles: readonly string[]): Promise<{ password: string; drop(): Promise<void> }> {
  return provisionLeaseAdmin(MARIADB, user, roles);
}

/** MariaDB accounts meshgate created (name prefix mg-) that still exist. */
export async function leaseAccounts(): Promise<string[]> {
  const admin = await connectAdmin(MARIADB);
  try {
    const [rows] = await admin.query(`SELECT User AS user FROM mysql.user WHERE User LIKE 'mg-%' AND is_role = BINARY 'N'`);
    return (rows as { user: string }[]).map((row) => row.user).sort();
  } finally {
    await admin.end();
  }
}

export const DEFAULT_POLICY = `
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: writers }
spec:
  action: ALLOW
  rules:
    - id: orders
      from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/shop/sa/orders"] } }]
      to: [{ mariadb: { databases: ["{db}", "*"], role: "{rw}" } }]
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: readers }
spec:
  action: ALLOW
  rules:
    - id: analytics
      from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/shop/sa/analytics"] } }]
      to: [{ mariadb: { databases: ["{db}", "*"], role: "{ro}" } }]
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: deny-staging }
spec:
  action: DENY
  rules:
    - from: [{ source: { namespaces: ["staging"] } }]
`;

export const STANDARD_WORKLOADS = {
  orders: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`,
  analytics: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/analytics`,
  staging: `spiffe://${TRUST_DOMAIN}/ns/staging/sa/orders`,
  stranger: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/stranger`,
} as const;

export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), `meshgate-${options.name}-`));
  const caDir = join(dir, 'ca');
  const database = `mgt_${options.name}`;
  const rw = `${options.name}_rw`;
  const ro = `${options.name}_ro`;
  await initCa({ dir: caDir, trustDomain: TRUST_DOMAIN });
  const server = await issueServerCert({ caDir, outDir: join(dir, 'server'), ttlSeconds: 3600 });
  const clients: Record<string, ClientFiles> = {};
  for (const [workload, spiffeId] of Object.entries(options.workloads)) {
    const issued = await issueSvid({ caDir, spiffeId, outDir: join(dir, 'clients'), name: workload, ttlSeconds: 3600 });
    clients[workload] = { cert: issued.certPath, key: issued.keyPath, ca: issued.bundlePath };
  }
  const provisioned = await provision(
    MARIADB,
    database,
    { [rw]: { privileges: ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP'] }, [ro]: { privileges: ['SELECT'] } },
    options.setupSql ?? [],
  );
  const policyDir = join(dir, 'policy');
  await mkdir(policyDir);
  const policy = (options.policy ?? DEFAULT_POLICY).replaceAll('{db}', database).replaceAll('{rw}', rw).replaceAll('{ro}', ro);
  await writeFile(join(policyDir, 'policy.yaml'), policy);
  const secretsDir = join(dir, 'secrets');
  await mkdir(secretsDir, { mode: 0o700 });
  const roles: Record<string, { user: string; password: { file: string } }> = {};
  for (const account of provisioned.accounts.values()) {
    const file = join(secretsDir, account.role);
    await writeFile(file, account.password, { mode: 0o600 });
    roles[account.role] = { user: account.user, password: { file } };
  }
  let adminAccount: { drop(): Promise<void> } | null = null;
  let upstreamAccounts: Pick<MeshgateConfigInput['upstream'], 'roles' | 'credentials'> = { roles };
  if (options.credentials === 'dynamic') {
    const created = await createAdminAccount(`mgt_${options.name}_admin`, [rw, ro]);
    adminAccount = created;
    const adminFile = join(secretsDir, 'admin');
    await writeFile(adminFile, created.password, { mode: 0o600 });
    upstreamAccounts = { credentials: { admin: { user: `mgt_${options.name}_admin`, password: { file: adminFile } } } };
  }
  const auditFile = join(dir, 'audit.jsonl');
  const input: MeshgateConfigInput = {
    listener: { host: '127.0.0.1', port: 0, tls: { cert: server.certPath, key: server.keyPath } },
    trust: { bundles: [join(caDir, 'bundle.pem')], trustDomains: [TRUST_DOMAIN] },
    upstream: { host: MARIADB.host, port: MARIADB.port, ...upstreamAccounts },
    state: { embedded: { dir: join(dir, 'state') } },
    ...(options.firestore === undefined ? {} : { firestore: { port: 0, project: options.firestore.project, upstream: { emulator: options.firestore.emulator } } }),
    policy: { dir: policyDir },
    audit: { file: auditFile },
  };
  options.config?.(input);
  const meshgate = await startMeshgate(resolveConfig(input, join(dir, 'meshgate.yaml')), options.log ?? silentLogger).catch(async (error: unknown) => {
    await adminAccount?.drop();
    await provisioned.drop();
    throw error;
  });
  const pem = async (path: string) => readFile(path);
  const loaded: Record<string, { cert: Buffer; key: Buffer; ca: Buffer }> = {};
  for (const [workload, files] of Object.entries(clients)) {
    loaded[workload] = { cert: await pem(files.cert), key: await pem(files.key), ca: await pem(files.ca) };
  }
  return {
    dir,
    caDir,
    port: meshgate.address.port,
    database,
    auditFile,
    meshgate,
    provisioned,
    clients,
    ssl(workload) {
      const files = loaded[workload];
      if (files === undefined) throw new TypeError(`no certificate issued for workload ${workload}`);
      return files;
    },
    async readAudit() {
      await meshgate.audit.flush();
      const text = await readFile(auditFile, 'utf8');
      return text
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    async stop() {
      await meshgate.close();
      await adminAccount?.drop();
      await provisioned.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Raises MariaDB's global max_allowed_packet for tests that move >16 MiB messages and
 * returns the function that puts the old value back. New sessions pick the global value up.
 */
export async function withMaxAllowedPacket(bytes: number): Promise<() => Promise<void>> {
  const admin = await connectAdmin(MARIADB);
  const [rows] = await admin.query('SELECT @@GLOBAL.max_allowed_packet AS v');
  const previous = Number((rows as { v: number }[])[0]!.v);
  await admin.query('SET GLOBAL max_allowed_packet = ?', [bytes]);
  return async () => {
    await admin.query('SET GLOBAL max_allowed_packet = ?', [previous]);
    await admin.end();
  };
}
