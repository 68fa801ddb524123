/**
 * A small world for the analysis tests: a policy directory (MariaDB rules in shop.yaml,
 * Firestore in catalog.yaml) and an audit of it built the way meshgate builds one: the real
 * recorder turns engine facts into events, the real sink and seal write them, rotating.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AuditRecorder } from '../../../src/audit/recorder.ts';
import type { AuditEvent } from '../../../src/audit/types.ts';
import { mgError } from '../../../src/errors/index.ts';
import type { Identity } from '../../../src/identity/index.ts';
import { memoryAuditSink } from '../../helpers/audit.ts';
import { writeRotatedLog } from '../audit/query/helpers.ts';

export function workload(namespace: string, sa: string): Identity {
  const principal = `cluster.local/ns/${namespace}/sa/${sa}`;
  return { spiffeId: `spiffe://${principal}`, principal, trustDomain: 'cluster.local', namespace, serviceAccount: sa, authMethod: 'mtls', certificate: { serialNumber: '01', notBefore: '', notAfter: '', fingerprint256: 'ab' } };
}

export const ORDERS = workload('shop', 'orders');
export const BILLING = workload('shop', 'billing');
export const ANALYST = workload('analytics', 'reports');
export const CATALOG = workload('web', 'catalog');
export const INTRUDER = workload('ci', 'runner');
export const CLUMSY = workload('shop', 'clumsy');

export const SHOP_POLICY = `# MariaDB access for the shop
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: shop
spec:
  action: ALLOW
  rules:
    - id: orders-rw
      from:
        - source:
            principals: ["cluster.local/ns/shop/sa/orders"]
      to:
        - mariadb:
            databases: [shop]
            role: shop_rw
    - id: billing-rw
      from:
        - source:
            principals: ["cluster.local/ns/shop/sa/billing"]
      to:
        - mariadb:
            databases: [shop]
            role: shop_rw
    - id: reports
      from:
        - source:
            namespaces: [analytics]
      to:
        - mariadb:
            databases: [shop]
            role: shop_ro
    - id: legacy
      from:
        - source:
            principals: ["cluster.local/ns/old/sa/batch"]
      to:
        - mariadb:
            databases: [shop]
            role: shop_rw
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: shop-deny
spec:
  action: DENY
  rules:
    - id: no-ci
      from:
        - source:
            namespaces: [ci]
`;

export const CATALOG_POLICY = `apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: catalog
spec:
  action: ALLOW
  rules:
    - id: catalog-rw
      from:
        - source:
            principals: ["cluster.local/ns/web/sa/catalog"]
      to:
        - firestore:
            collections: ["products/*", "products/*/reviews/*"]
            operations:
              - read
              - write
`;

export async function writePolicy(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'shop.yaml'), SHOP_POLICY);
  await writeFile(join(dir, 'catalog.yaml'), CATALOG_POLICY);
}

const PEER = { address: '10.1.2.3', port: 5555 };
let sessions = 0;

/** A MariaDB session as the engine reports it: its connection, then each statement. */
function session(recorder: AuditRecorder, identity: Identity, rule: string, role: string, statements: readonly { sql: string; verb: string }[]): void {
  const sessionId = `s${++sessions}`;
  recorder.connection({ engine: 'mysql', sessionId, peer: PEER, tls: null, identity, clientUser: 'x', database: 'shop', decision: 'allow', rule, reason: `allowed by ${rule}`, role, upstreamConnectionId: sessions, error: null });
  const open = recorder.openSession({ engine: 'mysql', sessionId, identity, role, rule, upstreamConnectionId: sessions, startedAt: Date.now() });
  for (const { sql, verb } of statements) {
    open.statement({ command: 'query', verb, verbs: [verb], statement: sql, traceId: 'a'.repeat(32), database: 'shop', decision: 'allow', rowsReturned: 1, rowsAffected: 0, durationUs: 10, outcome: 'completed', error: null });
  }
  open.end({ reason: 'client quit', bytesFromClient: 1, bytesFromUpstream: 1 });
}

function refusal(recorder: AuditRecorder, identity: Identity, rule: string | null, reason: string): void {
  recorder.connection({ engine: 'mysql', sessionId: `s${++sessions}`, peer: PEER, tls: null, identity, clientUser: 'x', database: 'shop', decision: 'deny', rule, reason, role: null, upstreamConnectionId: null, error: mgError('MG_POLICY_DENIED', reason) });
}

function firestoreCall(recorder: AuditRecorder, identity: Identity, operation: string, method: string, paths: string[]): void {
  recorder.rpc({ engine: 'firestore', sessionId: `c${++sessions}`, peer: PEER, identity, xfcc: null, method: `google.firestore.v1.Firestore/${method}`, operation, paths, decision: 'allow', rule: 'catalog/catalog-rw', reason: 'allowed by catalog/catalog-rw', traceId: 'b'.repeat(32), status: 0, error: null, documents: 1, startedAt: process.hrtime.bigint(), outcome: 'completed' });
}

/** What the shop did in the window, as the recorder writes it. */
export function shopEvents(): AuditEvent[] {
  const sink = memoryAuditSink();
  const recorder = new AuditRecorder(sink);
  session(recorder, ORDERS, 'shop/orders-rw', 'shop_rw', [
    { sql: 'SELECT * FROM orders o JOIN shop.customers c ON c.id = o.customer WHERE o.id = 1', verb: 'SELECT' },
    { sql: 'SHOW TABLES', verb: 'SHOW' },
  ]);
  session(recorder, ORDERS, 'shop/orders-rw', 'shop_rw', [{ sql: 'SELECT count(*) FROM `orders`', verb: 'SELECT' }]);
  session(recorder, BILLING, 'shop/billing-rw', 'shop_rw', [{ sql: "INSERT INTO invoices (id, total) VALUES (1, '9.90')", verb: 'INSERT' }]);
  session(recorder, ANALYST, 'shop/reports', 'shop_ro', [{ sql: 'SELECT * FROM orders', verb: 'SELECT' }]);
  for (let i = 0; i < 6; i++) refusal(recorder, INTRUDER, 'shop-deny/no-ci', 'denied by shop-deny/no-ci');
  for (let i = 0; i < 2; i++) refusal(recorder, CLUMSY, null, 'no rule allows cluster.local/ns/shop/sa/clumsy');
  firestoreCall(recorder, CATALOG, 'read', 'GetDocument', ['products/p1']);
  firestoreCall(recorder, CATALOG, 'read', 'RunQuery', ['products (collection)']);
  return sink.events;
}

/** Writes the shop's audit to `<dir>/audit.jsonl`, rotating every ~2 KiB. Returns its file names. */
export async function writeShopAudit(dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  return writeRotatedLog(dir, shopEvents(), 2048);
}
