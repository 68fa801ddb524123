import type { TLSSocket } from 'node:tls';
import { mgError } from '../errors/index.ts';
import type { TlsPeerFacts } from './types.ts';

/**
 * OpenSSL's verdict on a client's chain against the trust bundle, as its verify code
 * (CERT_HAS_EXPIRED, ...) or null when it verified. Node sets `authorized` only on sockets a
 * tls.Server accepted; meshgate wraps sockets itself (MySQL's STARTTLS, per-connection
 * contexts that follow reloaded files), so it asks the TLS handle the way Node's own server
 * code does.
 */
export function chainVerificationError(socket: TLSSocket): string | null {
  const handle = (socket as unknown as { _handle?: { verifyError?: () => (Error & { code?: string }) | null } })._handle;
  if (typeof handle?.verifyError !== 'function') {
    throw mgError('MG_INTERNAL', 'this Node.js version does not expose TLS verification results; run meshgate on Node.js 20 or 22');
  }
  const error = handle.verifyError();
  return error === null ? null : (error.code ?? error.message);
}

/** What the TLS handshake established about the client, as plain values. */
export function tlsFactsOf(socket: TLSSocket): TlsPeerFacts {
  const peer = socket.getPeerX509Certificate();
  const chainError = chainVerificationError(socket);
  return {
    authorized: peer !== undefined && chainError === null,
    authorizationError: chainError,
    peerCertificate: peer ?? null,
    protocol: socket.getProtocol(),
    cipher: socket.getCipher()?.name ?? null,
  };
}
