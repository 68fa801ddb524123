/** The demo's policy and configuration, written to disk so the user can read and reuse them. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { MeshgateConfigInput } from '../config/schema.ts';

export const DEMO_TRUST_DOMAIN = 'demo.meshgate.local';
export const DEMO_DATABASE = 'meshgate_demo';
export const DEMO_ROLES = { writer: 'demo_writer', reader: 'demo_reader' } as const;
export const DEMO_ADMIN_USER = 'meshgate_demo_admin';

export const DEMO_WORKLOADS = {
  orders: `spiffe://${DEMO_TRUST_DOMAIN}/ns/shop/sa/orders`,
  analytics: `spiffe://${DEMO_TRUST_DOMAIN}/ns/shop/sa/analytics`,
  staging: `spiffe://${DEMO_TRUST_DOMAIN}/ns/staging/sa/orders`,
} as const;

const POLICIES: Record<string, string> = {
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
  '10-orders.yaml': `# The orders service reads and writes the demo database as role ${DEMO_ROLES.writer}.
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
            databases: ["${DEMO_DATABASE}"]
            role: ${DEMO_ROLES.writer}
        # In Firestore it owns the orders collection and everything below it.
        - firestore:
            collections: ["orders/**"]
            operations: [read, write]
`,
  '20-analytics.yaml': `# Analytics reads only: role ${DEMO_ROLES.reader} holds SELECT and nothing else.
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
            databases: ["${DEMO_DATABASE}"]
            role: ${DEMO_ROLES.reader}
        # In Firestore it may read (get, list, query, listen) analytics, and write nothing.
        - firestore:
            collections: ["analytics/**"]
            operations: [read]
`,
};

export interface DemoFiles {
  readonly configPath: string;
  readonly policyDir: string;
  readonly auditFile: string;
}

export async function writeDemoFiles(
  dir: string,
  server: { certPath: string; keyPath: string; bundlePath: string },
  admin: { user: string; password: string },
  upstream: { host: string; port: number },
  firestore: { emulator: string; project: string },
): Promise<DemoFiles> {
  const policyDir = join(dir, 'policy');
  await mkdir(policyDir, { recursive: true });
  for (const [name, text] of Object.entries(POLICIES)) await writeFile(join(policyDir, name), text);
  const secrets = join(dir, 'secrets');
  await mkdir(secrets, { recursive: true, mode: 0o700 });
  await writeFile(join(secrets, 'admin'), admin.password + '\n', { mode: 0o600 });
  const config: MeshgateConfigInput = {
    listener: { host: '127.0.0.1', port: 3307, tls: { required: true, cert: server.certPath, key: server.keyPath } },
    trust: { bundles: [server.bundlePath], trustDomains: [DEMO_TRUST_DOMAIN] },
    // Dynamic credentials: an account per identity, made on demand and dropped at lease end.
    upstream: { host: upstream.host, port: upstream.port, credentials: { admin: { user: admin.user, password: { file: 'secrets/admin' } } } },
    state: { embedded: { dir: 'state' } },
    firestore: { host: '127.0.0.1', port: 8443, project: firestore.project, upstream: { emulator: firestore.emulator } },
    policy: { dir: 'policy' },
    audit: { file: 'audit.jsonl' },
  };
  const configPath = join(dir, 'meshgate.yaml');
  await writeFile(configPath, `# Written by \`meshgate demo\`; run it with: meshgate serve --config ${configPath}\n` + stringify(config));
  return { configPath, policyDir, auditFile: join(dir, 'audit.jsonl') };
}
