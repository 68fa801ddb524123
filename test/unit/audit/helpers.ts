/** Event factories and temp directories shared by the audit tests. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditIdentity, ConnectionEvent, StatementEvent } from '../../../src/audit/types.ts';
import type { Identity } from '../../../src/identity/index.ts';

export const IDENTITY: AuditIdentity = {
  spiffeId: 'spiffe://example.org/ns/shop/sa/orders',
  principal: 'example.org/ns/shop/sa/orders',
  trustDomain: 'example.org',
  namespace: 'shop',
  serviceAccount: 'orders',
  authMethod: 'mtls',
};

/** The identity an engine reports facts for (IDENTITY is how events record it). */
export const WORKLOAD: Identity = { ...IDENTITY, authMethod: 'mtls', certificate: { serialNumber: '01', notBefore: '', notAfter: '', fingerprint256: 'ab' } };

export function statementEvent(n: number, overrides: Partial<StatementEvent> = {}): StatementEvent {
  return {
    type: 'statement',
    time: new Date(Date.UTC(2025, 0, 1, 0, 0, 0, n)).toISOString(),
    sessionId: `s-${n}`,
    engine: 'mysql',
    identity: IDENTITY,
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    command: 'query',
    verb: 'SELECT',
    statement: `SELECT ${n}`,
    database: 'shop',
    decision: 'allow',
    rule: 'orders-read',
    upstreamRole: 'reader',
    upstreamConnectionId: 7,
    rowsReturned: 1,
    rowsAffected: 0,
    durationUs: 1234,
    outcome: 'completed',
    error: null,
    ...overrides,
  };
}

export function connectionEvent(n: number, overrides: Partial<ConnectionEvent> = {}): ConnectionEvent {
  return {
    type: 'connection',
    time: new Date(Date.UTC(2025, 0, 1, 0, 0, 0, n)).toISOString(),
    sessionId: `s-${n}`,
    engine: 'mysql',
    peer: { address: '10.0.0.5', port: 40000 + n },
    tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', clientCertSerial: '01' },
    identity: IDENTITY,
    clientUser: 'orders',
    database: 'shop',
    decision: 'allow',
    rule: 'orders-read',
    reason: 'allowed by orders-read',
    upstreamRole: 'reader',
    upstreamConnectionId: 7,
    error: null,
    ...overrides,
  };
}

/** A fresh directory, removed (with everything in it) by the returned cleanup. */
export async function tempDir(): Promise<{ dir: string; file: (name: string) => string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-audit-'));
  return { dir, file: (name) => join(dir, name), cleanup: () => rm(dir, { recursive: true, force: true }) };
}
