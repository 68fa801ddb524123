/**
 * meshgate in front of a private MariaDB that speaks TLS (the shared test server has none):
 * one CA signs MariaDB's server certificate, meshgate's upstream client certificate, its
 * listener certificate and the workloads' SVIDs. meshgate runs with `upstream.tls` and
 * dynamic credentials; its admin account itself requires meshgate's certificate, so every
 * admin connection (upstream check, lease manager, server settings) must come over TLS.
 * Unless told otherwise it runs one workload, orders, allowed into the harness's database in
 * its role. stop() removes everything, the private server included.
 */
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import type { MeshgateConfigInput } from '../../src/config/schema.ts';
import { ident, provision, provisionLeaseAdmin, type Provisioned } from '../../src/demo/provision.ts';
import type { Identity } from '../../src/identity/index.ts';
import { issueServerCert } from '../../src/identity/ca.ts';
import type { Logger } from '../../src/log.ts';
import type { RunningMeshgate } from '../../src/server.ts';
import { baseConfig, inTempDir, runMeshgate, TRUST_DOMAIN, writeHarnessFiles, type BaseHarness, type HarnessFiles } from './bare-harness.ts';
import { startPrivateMariadb, type PrivateMariadb } from './private-mariadb.ts';

/** The subject meshgate's upstream certificate is issued with (`meshgate ca issue-server --dns meshgate-upstream`). */
export const UPSTREAM_CERT_CN = 'meshgate-upstream';

/** The workload a harness runs with unless told otherwise. */
const ORDERS = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;

/** orders may use the harness's database, in its role. */
const ORDERS_POLICY = `
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: orders }
spec:
  action: ALLOW
  rules:
    - id: orders
      from: [{ source: { principals: ["${ORDERS.slice('spiffe://'.length)}"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{rw}" } }]
`;

export interface TlsUpstreamOptions {
  readonly name: string;
  /** Workload names and their SPIFFE IDs. Default: orders alone. */
  readonly workloads?: Readonly<Record<string, string>>;
  /** Policy YAML; `{db}` and `{rw}` are replaced. Default: orders may use `{db}` as `{rw}`. */
  readonly policy?: string;
  readonly config?: (config: MeshgateConfigInput & { upstream: NonNullable<MeshgateConfigInput['upstream']> }) => void;
  readonly log?: Logger;
}

export interface PemFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export interface TlsUpstreamHarness extends BaseHarness {
  readonly server: PrivateMariadb;
  readonly files: HarnessFiles;
  readonly database: string;
  readonly role: string;
  readonly adminUser: string;
  /** meshgate's client certificate toward MariaDB (upstream.tls). */
  readonly upstreamCert: PemFiles;
  /** meshgate's listener certificate: the same CA, another subject. */
  readonly listenerCert: PemFiles;
  /** `/O=meshgate/CN=…` as MariaDB writes the subject and issuer of meshgate's upstream certificate. */
  readonly requirement: { readonly subject: string; readonly issuer: string };
  readonly meshgate: RunningMeshgate;
  /** mysql2 `ssl` options from PEM files, for direct logins to the private server. */
  sslOf(files: PemFiles | { readonly ca: string }): Promise<{ ca: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: true }>;
  /** A session through meshgate as `workload`, into the harness's database. */
  connect(workload: string): Promise<mysql.Connection>;
  /** A direct login to the private MariaDB, as a workload that holds a lease password would try. */
  direct(user: string, password: string, ssl?: PemFiles | { readonly ca: string }): Promise<mysql.Connection>;
  /** Runs one statement as root on the private server (Unix socket). */
  root<T = unknown>(sql: string, values?: unknown[]): Promise<T>;
}

/** The identity meshgate resolves for a workload's SVID (lease keys are per principal and role). */
export function identityOf(spiffeId: string): Identity {
  const url = new URL(spiffeId);
  const [, ns, namespace, sa, serviceAccount] = url.pathname.split('/');
  return {
    spiffeId,
    trustDomain: url.host,
    namespace: ns === 'ns' ? (namespace ?? null) : null,
    serviceAccount: sa === 'sa' ? (serviceAccount ?? null) : null,
    principal: `${url.host}${url.pathname}`,
    authMethod: 'mtls',
    certificate: { serialNumber: '', notBefore: '', notAfter: '', fingerprint256: '' },
  };
}

/** `O=meshgate\nCN=x` (node's form) as OpenSSL's one-line form MariaDB compares: `/O=meshgate/CN=x`. */
function oneLine(name: string): string {
  return '/' + name.split('\n').join('/');
}

export function startTlsUpstreamHarness(options: TlsUpstreamOptions): Promise<TlsUpstreamHarness> {
  return inTempDir(options.name, async (dir, undo, undoAll) => {
    const files = await writeHarnessFiles(dir, options.workloads ?? { orders: ORDERS }, 'placeholder: rewritten below');
    const mariadbCert = await issueServerCert({ caDir: files.caDir, outDir: join(dir, 'mariadb'), ipAddresses: ['127.0.0.1'], name: 'mariadb', ttlSeconds: 3600 });
    const upstream = await issueServerCert({ caDir: files.caDir, outDir: join(dir, 'upstream'), dnsNames: [UPSTREAM_CERT_CN], name: 'upstream', ttlSeconds: 3600 });
    const bundle = join(files.caDir, 'bundle.pem');
    const upstreamCert: PemFiles = { cert: upstream.certPath, key: upstream.keyPath, ca: bundle };
    const listenerCert: PemFiles = { cert: files.server.cert, key: files.server.key, ca: bundle };
    const x509 = new X509Certificate(await readFile(upstream.certPath));
    const requirement = { subject: oneLine(x509.subject), issuer: oneLine(x509.issuer) };

    const server = await startPrivateMariadb({ tls: { cert: mariadbCert.certPath, key: mariadbCert.keyPath, ca: bundle } });
    undo.push(() => server.stop());
    const target = { host: server.host, port: server.port, user: 'root', password: '' };
    const database = `mgt_${options.name}`;
    const role = `${options.name}_rw`;
    const provisioned: Provisioned = await provision(target, database, { [role]: { privileges: ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP'] } }, [], { staticAccounts: false });
    const adminUser = `mgt_${options.name}_admin`;
    const admin = await provisionLeaseAdmin(target, adminUser, [role]);
    // The admin account, too, is useless without meshgate's certificate.
    await server.admin(`ALTER USER ${ident(adminUser)}@'%' REQUIRE SUBJECT ? AND ISSUER ?`, [requirement.subject, requirement.issuer]);
    const adminFile = join(dir, 'admin.pw');
    await writeFile(adminFile, admin.password, { mode: 0o600 });
    await writeFile(join(files.policyDir, 'policy.yaml'), (options.policy ?? ORDERS_POLICY).replaceAll('{db}', database).replaceAll('{rw}', role));

    const input: MeshgateConfigInput & { upstream: NonNullable<MeshgateConfigInput['upstream']> } = {
      listener: { host: '127.0.0.1', port: 0, tls: { cert: files.server.cert, key: files.server.key } },
      ...baseConfig(files),
      upstream: {
        host: server.host,
        port: server.port,
        tls: { ca: bundle, cert: upstream.certPath, key: upstream.keyPath },
        credentials: { admin: { user: adminUser, password: { file: adminFile } } },
      },
    };
    options.config?.(input);
    const base = await runMeshgate(files, input, options.log, undo);

    const sslOf = async (pems: PemFiles | { readonly ca: string }) => ({
      ca: await readFile(pems.ca),
      ...('cert' in pems ? { cert: await readFile(pems.cert), key: await readFile(pems.key) } : {}),
      rejectUnauthorized: true as const,
    });
    return {
      ...base,
      server,
      files,
      database: provisioned.database,
      role,
      adminUser,
      upstreamCert,
      listenerCert,
      requirement,
      sslOf,
      connect: (workload) => mysql.createConnection({ host: '127.0.0.1', port: base.meshgate.address!.port, user: workload, database: provisioned.database, ssl: base.ssl(workload) }),
      async direct(user, password, ssl) {
        return mysql.createConnection({ host: server.host, port: server.port, user, password, connectTimeout: 5000, ...(ssl === undefined ? {} : { ssl: await sslOf(ssl) }) });
      },
      root: (sql, values) => server.admin(sql, values),
      async stop() {
        await undoAll();
      },
    };
  });
}
