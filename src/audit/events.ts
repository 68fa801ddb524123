/**
 * Events from facts: the fields every engine's events share, built one way. Only the
 * recorder calls these.
 */
import type { MeshgateError } from '../errors/index.ts';
import { auditTime } from './clock.ts';
import type { ConnectionFacts, PolicyFacts, RpcFacts, UpstreamError } from './facts.ts';
import { auditIdentity } from './identity.ts';
import type { AuditError, ConnectionEvent, DryRunRecord, RpcEvent } from './types.ts';

export function errorOf(error: MeshgateError | UpstreamError | null): AuditError | null {
  if (error === null) return null;
  if (typeof error.code === 'number') {
    const upstream = error as UpstreamError;
    return upstream.sqlState === undefined ? { code: upstream.code, message: upstream.message } : { code: upstream.code, message: upstream.message, sqlState: upstream.sqlState };
  }
  return { code: error.code, message: error.message };
}

export function connectionEvent(f: ConnectionFacts): ConnectionEvent {
  return {
    type: 'connection',
    time: auditTime(),
    sessionId: f.sessionId,
    engine: f.engine,
    peer: { address: f.peer.address, port: f.peer.port },
    tls: f.tls === null ? null : { protocol: f.tls.protocol, cipher: f.tls.cipher, clientCertSerial: f.tls.peerCertificate?.serialNumber ?? null },
    identity: f.identity === null ? null : auditIdentity(f.identity),
    clientUser: f.clientUser,
    database: f.database,
    decision: f.decision,
    rule: f.rule,
    reason: f.reason,
    ...policyFields(f),
    upstreamRole: f.role,
    upstreamConnectionId: f.upstreamConnectionId,
    error: f.error === null ? null : { code: f.error.code, message: f.error.message },
  };
}


/** `policyVersion` and `dryRun`, present only where a policy decided and a dry run matched. */
export function policyFields(f: PolicyFacts): { policyVersion?: string; dryRun?: DryRunRecord } {
  const version = f.policyVersion ?? null;
  const dry = f.dryRun ?? null;
  if (version === null && dry === null) return {};
  if (dry === null) return { policyVersion: version! };
  const dryRun: DryRunRecord = { rule: dry.rule, decision: dry.decision, reason: dry.reason };
  return version === null ? { dryRun } : { policyVersion: version, dryRun };
}

export function rpcEvent(f: RpcFacts): RpcEvent {
  const error = f.error !== null ? { code: f.error.code, message: f.error.message } : f.status !== 0 ? { code: f.status, message: f.upstreamMessage ?? '' } : null;
  return {
    type: 'rpc',
    time: auditTime(),
    sessionId: f.sessionId,
    engine: f.engine,
    peer: f.peer,
    identity: f.identity === null ? null : auditIdentity(f.identity),
    xfcc: f.xfcc,
    method: f.method,
    operation: f.operation,
    paths: f.paths,
    decision: f.decision,
    rule: f.rule,
    reason: f.reason,
    ...policyFields(f),
    traceId: f.traceId,
    status: f.status,
    documents: f.documents,
    durationUs: Number((process.hrtime.bigint() - f.startedAt) / 1000n),
    outcome: f.outcome,
    error,
    ...(f.throttleWaitMs === undefined || f.throttleWaitMs <= 0 ? {} : { throttleWaitMs: f.throttleWaitMs }),
  };
}
