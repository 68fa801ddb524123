/** What a session reports and reads off its sockets, kept apart from its state machine. */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { auditTime } from '../../audit/clock.ts';
import { auditIdentity } from '../../audit/identity.ts';
import type { ConnectionEvent } from '../../audit/types.ts';
import type { MeshgateError } from '../../errors/index.ts';
import type { Identity, TlsPeerFacts } from '../../identity/types.ts';
import type { HandshakeResponse } from './codec/handshake.ts';

export interface ConnectionFacts {
  readonly sessionId: string;
  readonly socket: Socket;
  readonly tls: TlsPeerFacts | null;
  readonly response: HandshakeResponse | null;
  readonly identity: Identity | null;
  readonly decision: 'allow' | 'deny';
  readonly rule: string | null;
  readonly reason: string;
  readonly role: string | null;
  readonly upstreamConnectionId: number | null;
  readonly error: MeshgateError | null;
}

export function connectionEvent(f: ConnectionFacts): ConnectionEvent {
  return {
    type: 'connection',
    time: auditTime(),
    sessionId: f.sessionId,
    engine: 'mysql',
    peer: { address: f.socket.remoteAddress ?? '', port: f.socket.remotePort ?? 0 },
    tls: f.tls === null ? null : { protocol: f.tls.protocol, cipher: f.tls.cipher, clientCertSerial: f.tls.peerCertificate?.serialNumber ?? null },
    identity: f.identity === null ? null : auditIdentity(f.identity),
    clientUser: f.response?.username ?? null,
    database: f.response?.database ?? null,
    decision: f.decision,
    rule: f.rule,
    reason: f.reason,
    upstreamRole: f.role,
    upstreamConnectionId: f.upstreamConnectionId,
    error: f.error === null ? null : { code: f.error.code, message: f.error.message },
  };
}

/** Scramble bytes must not contain NUL (the greeting terminates strings with it). */
export function printableNonce(): Buffer {
  const nonce = randomBytes(20);
  for (let i = 0; i < nonce.length; i++) nonce[i] = 0x21 + (nonce[i]! % 0x5e);
  return nonce;
}

/**
 * The token a client sent as its password through mysql_clear_password: NUL-terminated,
 * perhaps pasted with its `Bearer ` prefix.
 */
export function tokenFromPassword(password: Buffer): string {
  let end = password.length;
  while (end > 0 && password[end - 1] === 0) end--;
  const text = password.toString('utf8', 0, end).trim();
  return text.startsWith('Bearer ') ? text.slice(7).trim() : text;
}
