/**
 * What a failed server-side TLS handshake means, as a refusal every listener audits the same
 * way. OpenSSL's reason reaches Node as an error code (ERR_SSL_<REASON>); the ones a client can
 * cause get a message saying what to change. A connection that merely went away (a TCP probe,
 * a client that gave up before sending a byte) is not a refusal: null.
 */
import { mgError, type MeshgateError } from '../errors/index.ts';

const TOO_OLD = new Set(['ERR_SSL_UNSUPPORTED_PROTOCOL', 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'ERR_SSL_UNSUPPORTED_SSL_VERSION', 'ERR_SSL_WRONG_SSL_VERSION']);
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_HTTP_REQUEST', 'ERR_SSL_HTTPS_PROXY_REQUEST', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_RECORD_LAYER_FAILURE', 'ERR_SSL_UNEXPECTED_MESSAGE']);

export function tlsRefusal(error: NodeJS.ErrnoException): MeshgateError | null {
  const code = error.code ?? '';
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return mgError('MG_CLIENT_TIMEOUT', 'the client did not finish the TLS handshake in time; meshgate closed the connection');
  if (!code.startsWith('ERR_SSL_')) return null;
  if (TOO_OLD.has(code)) {
    return mgError('MG_TLS_HANDSHAKE_FAILED', `the client offered only TLS versions meshgate does not accept (${code}); meshgate accepts TLS 1.2 and 1.3: upgrade the client or its TLS settings`);
  }
  if (NOT_TLS.has(code)) return mgError('MG_TLS_HANDSHAKE_FAILED', `the client sent bytes that are not a TLS handshake (${code}); connect with TLS`);
  if (code === 'ERR_SSL_NO_SHARED_CIPHER') return mgError('MG_TLS_HANDSHAKE_FAILED', `the client offered no cipher meshgate accepts (${code}); use a current TLS library`);
  if (code === 'ERR_SSL_NO_APPLICATION_PROTOCOL') return mgError('MG_TLS_HANDSHAKE_FAILED', `the client offered no application protocol this port speaks in ALPN (${code}); this port speaks gRPC over HTTP/2 (h2)`);
  if (/ALERT/.test(code)) {
    return mgError('MG_TLS_HANDSHAKE_FAILED', `the client ended the TLS handshake with an alert (${code}): it may not trust meshgate's certificate, or refuses what meshgate offered`);
  }
  return mgError('MG_TLS_HANDSHAKE_FAILED', `the TLS handshake failed (${code})`);
}
