/** The demo's policy and configuration, written to disk so the user can read and reuse them. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { MeshgateConfigInput } from '../config/schema.ts';
import { mgError } from '../errors/index.ts';

export const DEMO_TRUST_DOMAIN = 'demo.meshgate.local';
export const DEFAULT_DEMO_NAME = 'meshgate_demo';

/**
 * What the demo creates in MariaDB, all named after one prefix, so that runs side by side
 * (a test next to `npm run demo`) each have their own and `--clean` knows what to drop.
 */
export interface DemoNames {
  readonly database: string;
  readonly roles: { readonly writer: string; readonly reader: string };
  readonly admin: string;
}

const DEMO_NAME = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;

export function demoNames(name: string = DEFAULT_DEMO_NAME): DemoNames {
  if (!DEMO_NAME.test(name)) {
    throw mgError('MG_USAGE', `--name ${JSON.stringify(name)}: use 1-40 letters, digits and _, starting with a letter (it prefixes MariaDB database, role and account names)`);
  }
  return { database: name, roles: { writer: `${name}_writer`, reader: `${name}_reader` }, admin: `${name}_admin` };
}

export const DEMO_WORKLOADS = {
  orders: `spiffe://${DEMO_TRUST_DOMAIN}/ns/shop/sa/orders`,
  analytics: `spiffe://${DEMO_TRUST_DOMAIN}/ns/shop/sa/analytics`,
  staging: `spiffe://${DEMO_TRUST_DOMAIN}/ns/staging/sa/orders`,
} as const;

const policies = ({ database, roles }: DemoNames): Record<string, string> => ({
  '00-deny-non-production.yaml': `# Workloads outside production never reach these databases, whatever ALLOW rule
# is added later: a matching DENY beats every ALLOW.
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: deny-non-production
spec:
  action: DENY
  rules:
    - from:
        - source:
            namespaces: ["staging", "dev-*"]
`,
  '10-orders.yaml': `# The orders service reads and writes the demo database as role ${roles.writer}.
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: orders-read-write
spec:
  action: ALLOW
  rules:
    - id: orders
      from:
        - source:
            principals: ["${DEMO_TRUST_DOMAIN}/ns/shop/sa/orders"]
      to:
        - mariadb:
            databases: ["${database}"]
            role: ${roles.writer}
        # In Firestore it owns the orders collection and everything below it.
        - firestore:
            collections: ["orders/**"]
            operations: [read, write]
`,
  '20-analytics.yaml': `# Analytics reads only: role ${roles.reader} holds SELECT and nothing else.
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: analytics-read-only
spec:
  action: ALLOW
  rules:
    - id: analytics
      from:
        - source:
            principals: ["${DEMO_TRUST_DOMAIN}/ns/shop/sa/analytics"]
      to:
        - mariadb:
            databases: ["${database}"]
            role: ${roles.reader}
        # In Firestore it may read (get, list, query, listen) analytics, and write nothing.
        - firestore:
            collections: ["analytics/**"]
            operations: [read]
`,
});

export interface DemoFiles {
  readonly configPath: string;
  readonly policyDir: string;
  readonly auditFile: string;
}

export async function writeDemoFiles(
  dir: string,
  names: DemoNames,
  server: { certPath: string; keyPath: string; bundlePath: string },
  adminPassword: string,
  upstream: { host: string; port: number },
  firestoreProject: string,
): Promise<DemoFiles> {
  const policyDir = join(dir, 'policy');
  await mkdir(policyDir, { recursive: true });
  for (const [name, text] of Object.entries(policies(names))) await writeFile(join(policyDir, name), text);
  const secrets = join(dir, 'secrets');
  await mkdir(secrets, { recursive: true, mode: 0o700 });
  await writeFile(join(secrets, 'admin'), adminPassword + '\n', { mode: 0o600 });
  const config: MeshgateConfigInput = {
    listener: { host: '127.0.0.1', port: 3307, tls: { required: true, cert: server.certPath, key: server.keyPath } },
    trust: { bundles: [server.bundlePath], trustDomains: [DEMO_TRUST_DOMAIN] },
    // Dynamic credentials: an account per identity, made on demand and dropped at lease end.
    upstream: { host: upstream.host, port: upstream.port, credentials: { admin: { user: names.admin, password: { file: 'secrets/admin' } } } },
    state: { embedded: { dir: 'state' } },
    // meshgate starts its own emulator, so the kept config serves Firestore as it is.
    firestore: { host: '127.0.0.1', port: 8443, project: firestoreProject, upstream: { launchEmulator: { port: 0 } } },
    policy: { dir: 'policy' },
    audit: { file: 'audit.jsonl' },
  };
  const configPath = join(dir, 'meshgate.yaml');
  await writeFile(configPath, `# Written by \`meshgate demo\`; run it with: meshgate serve --config ${configPath}\n` + stringify(config));
  return { configPath, policyDir, auditFile: join(dir, 'audit.jsonl') };
}
