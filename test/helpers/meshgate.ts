/**
 * A whole meshgate for integration tests: a CA in a temp dir, certificates for a few
 * workloads, a MariaDB database with roles and role accounts, a policy directory, and
 * meshgate listening on a free port. `stop()` removes all of it.
 */
import { randomBytes } from 'node:crypto';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { MeshgateConfigInput } from '../../src/config/schema.ts';
import { connectAdmin, provision, provisionLeaseAdmin, type Provisioned } from '../../src/demo/provision.ts';
import type { Logger } from '../../src/log.ts';
import type { RunningMysql } from '../../src/engines/index.ts';
import type { RunningMeshgate } from '../../src/server.ts';
import { MARIADB_TARGET } from './services.ts';
import { openEmbeddedStore } from '../../src/store/embedded.ts';
import type { StateStore } from '../../src/store/types.ts';
import { baseConfig, inTempDir, runMeshgate, writeHarnessFiles, TRUST_DOMAIN, type BaseHarness, type Undo } from './bare-harness.ts';

export { holdGlobal, withMaxAllowedPacket, type HoldOptions } from './server-globals.ts';
export { startBareHarness, TRUST_DOMAIN, type BareHarnessOptions, type BaseHarness, type ClientFiles, type HarnessFiles } from './bare-harness.ts';

export const MARIADB = MARIADB_TARGET;

type UpstreamInput = NonNullable<MeshgateConfigInput['upstream']>;
type ListenerInput = NonNullable<MeshgateConfigInput['listener']>;
/** A harness config always has the MySQL engine's sections, for callbacks to adjust. */
export type HarnessConfigInput = MeshgateConfigInput & { listener: ListenerInput & { tls: NonNullable<ListenerInput['tls']> }; upstream: UpstreamInput };

/**
 * Unique to this test process. Every file runs in its own process, and other runs (a
 * second `npm test`, the demo, a benchmark) share the MariaDB: whatever a test creates
 * there carries this in its name, so two runs of the same file never touch each other's
 * objects.
 */
export const RUN_ID = randomBytes(3).toString('hex');

/** `<name>_<RUN_ID>`: a MariaDB-safe name no other run uses. */
export function unique(name: string): string {
  return `${name}_${RUN_ID}`;
}

/** meshgate with its MySQL engine, whose listener and pool tests reach into. */
export type MysqlMeshgate = RunningMeshgate & Pick<RunningMysql, 'address' | 'listener' | 'pool'>;

export interface Harness extends BaseHarness {
  readonly port: number;
  /** The database (`mgt_<name>_<run>`) and the roles (`<name>_<run>_rw`, `_ro`) made for this run. */
  readonly database: string;
  readonly roles: { readonly rw: string; readonly ro: string };
  /** meshgate's admin account, with `credentials: 'dynamic'`. */
  readonly adminUser: string | null;
  readonly meshgate: MysqlMeshgate;
  readonly provisioned: Provisioned;
  /**
   * The MariaDB accounts this harness's meshgate created (from its own lease records) that
   * still exist; after stop(), those it had created. Never other runs' accounts.
   */
  leaseAccounts(): Promise<string[]>;
}

export interface HarnessOptions {
  /** Short name: the database is `mgt_<name>_<run>`, roles `<name>_<run>_rw` and `_ro` (see unique()). */
  readonly name: string;
  /** Workload name → SPIFFE ID. */
  readonly workloads: Readonly<Record<string, string>>;
  /** Policy YAML; `{db}`, `{rw}`, `{ro}` are replaced. Default: the standard three rules. */
  readonly policy?: string;
  readonly setupSql?: readonly string[];
  readonly config?: (config: HarnessConfigInput) => void;
  /**
   * `dynamic`: meshgate gets an admin account (the minimal privileges the README lists) and
   * creates a MariaDB account per identity and role; `static` (default): one account per role.
   */
  readonly credentials?: 'static' | 'dynamic';
  /** meshgate's operational log; default silent. */
  readonly log?: Logger;
}

/** The privileges meshgate's admin account needs for dynamic credentials, nothing more. */
export function createAdminAccount(user: string, roles: readonly string[]): Promise<{ password: string; drop(): Promise<void> }> {
  return provisionLeaseAdmin(MARIADB, user, roles);
}

/** Those of `usernames` that exist as MariaDB accounts, sorted. */
export async function existingAccounts(usernames: Iterable<string>): Promise<string[]> {
  const wanted = [...new Set(usernames)];
  if (wanted.length === 0) return [];
  const admin = await connectAdmin(MARIADB);
  try {
    const [rows] = await admin.query(`SELECT DISTINCT User AS user FROM mysql.user WHERE User IN (?)`, [wanted]);
    return (rows as { user: string }[]).map((row) => row.user).sort();
  } finally {
    await admin.end();
  }
}

/**
 * `<name>.yaml` in the harness's directory, for `meshgate serve` as a process: its listener
 * certificate, trust bundle and dynamic admin account (`credentials: 'dynamic'`), with
 * `sections` added or replacing those. Returns the file's path.
 */
export async function writeServeConfig(h: Harness, name: string, sections: Record<string, unknown>): Promise<string> {
  if (h.adminUser === null) throw new TypeError("writeServeConfig needs a harness started with credentials: 'dynamic'");
  const file = join(h.dir, `${name}.yaml`);
  const config = {
    listener: { host: '127.0.0.1', port: 0, tls: { cert: 'server/server.crt', key: 'server/server.key' } },
    trust: { bundles: ['ca/bundle.pem'], trustDomains: [TRUST_DOMAIN] },
    upstream: { host: MARIADB.host, port: MARIADB.port, credentials: { admin: { user: h.adminUser, password: { file: 'secrets/admin' } } } },
    ...sections,
  };
  await writeFile(file, stringify(config));
  return file;
}

/** The accounts a lease store's records name that exist in MariaDB: what that meshgate made. */
export async function leaseAccountsOf(store: Pick<StateStore, 'listLeases'>): Promise<string[]> {
  return existingAccounts((await store.listLeases()).map((lease) => lease.username));
}

/**
 * meshgate's accounts (prefix mg-) whose names start with `prefix`; give a prefix with
 * this run's namespace in it (`mg-<unique ns>.`), never bare `mg-`.
 */
export async function accountsWithPrefix(prefix: string): Promise<string[]> {
  if (!/^mg-[^%_]{3,}/.test(prefix)) throw new TypeError(`accountsWithPrefix needs a prefix unique to this run, not '${prefix}'`);
  const admin = await connectAdmin(MARIADB);
  try {
    const [rows] = await admin.query(`SELECT User AS user FROM mysql.user WHERE LEFT(User, ?) = ? AND is_role = BINARY 'N'`, [prefix.length, prefix]);
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

export function startHarness(options: HarnessOptions): Promise<Harness> {
  return inTempDir(options.name, (dir, undo, undoAll) => assembleHarness(options, dir, undo, undoAll));
}

async function assembleHarness(options: HarnessOptions, dir: string, undo: Undo, undoAll: () => Promise<void>): Promise<Harness> {
  const name = unique(options.name);
  const database = `mgt_${name}`;
  const rw = `${name}_rw`;
  const ro = `${name}_ro`;
  const policy = (options.policy ?? DEFAULT_POLICY).replaceAll('{db}', database).replaceAll('{rw}', rw).replaceAll('{ro}', ro);
  const files = await writeHarnessFiles(dir, options.workloads, policy);
  const provisioned = await provision(
    MARIADB,
    database,
    { [rw]: { privileges: ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP'] }, [ro]: { privileges: ['SELECT'] } },
    options.setupSql ?? [],
  );
  undo.push(() => provisioned.drop());
  const secretsDir = join(dir, 'secrets');
  await mkdir(secretsDir, { mode: 0o700 });
  const roles: Record<string, { user: string; password: { file: string } }> = {};
  for (const account of provisioned.accounts.values()) {
    const file = join(secretsDir, account.role);
    await writeFile(file, account.password, { mode: 0o600 });
    roles[account.role] = { user: account.user, password: { file } };
  }
  let adminUser: string | null = null;
  let upstreamAccounts: Pick<UpstreamInput, 'roles' | 'credentials'> = { roles };
  if (options.credentials === 'dynamic') {
    adminUser = `mgt_${name}_admin`;
    const created = await createAdminAccount(adminUser, [rw, ro]);
    undo.push(() => created.drop());
    const adminFile = join(secretsDir, 'admin');
    await writeFile(adminFile, created.password, { mode: 0o600 });
    upstreamAccounts = { credentials: { admin: { user: adminUser, password: { file: adminFile } } } };
  }
  const input: HarnessConfigInput = {
    listener: { host: '127.0.0.1', port: 0, tls: { cert: files.server.cert, key: files.server.key } },
    ...baseConfig(files),
    upstream: { host: MARIADB.host, port: MARIADB.port, ...upstreamAccounts },
  };
  options.config?.(input);
  // Read before anything is dropped, so accounts a crashed start created are found too.
  let createdUsernames: string[] = [];
  const leaseUsernames = async () => {
    const store = await openEmbeddedStore(files.stateDir, { owner: 'test-harness' });
    try {
      createdUsernames = [...new Set([...createdUsernames, ...(await store.listLeases()).map((lease) => lease.username)])];
    } finally {
      await store.close();
    }
    return createdUsernames;
  };
  const base = await runMeshgate(files, input, options.log, undo);
  const { address } = base.meshgate;
  if (address === null || base.meshgate.listener === null || base.meshgate.pool === null) throw new Error('meshgate started without its MySQL engine');
  let stopped = false;
  return {
    ...base,
    // Checked just above: this harness always runs the MySQL engine.
    meshgate: base.meshgate as MysqlMeshgate,
    port: address.port,
    database,
    roles: { rw, ro },
    adminUser,
    provisioned,
    async leaseAccounts() {
      if (stopped) return existingAccounts(createdUsernames);
      return existingAccounts(await leaseUsernames());
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await base.meshgate.close();
      if (options.credentials === 'dynamic') await leaseUsernames().catch(() => undefined);
      await undoAll();
    },
  };
}
