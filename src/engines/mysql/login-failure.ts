/**
 * Why a login to MariaDB failed, read from whatever the client said: mysql2's errors
 * (`errno`, `code`) or meshgate's own from connectUpstream (a MariaDB error number or a
 * socket error code in its cause). Callers turn the kind into advice for their audience:
 * the demo names its --mariadb URL, `serve` names the config field.
 */
import { isMeshgateError } from '../../errors/index.ts';

export type LoginFailureKind =
  /** ECONNREFUSED: the host answers, but nothing listens on the port. */
  | 'nothing-listening'
  /** The name does not resolve (yet). */
  | 'unknown-host'
  /** No answer in time, or the connection dropped during login: down, starting or filtered. */
  | 'no-answer'
  /** MariaDB is there but cannot take this login now (too many connections, shutting down). */
  | 'busy'
  /** 1045: wrong password, or no such account. MariaDB does not say which, on purpose. */
  | 'password-refused'
  /** 1130: the account exists, but not for the host meshgate connects from. */
  | 'host-not-allowed'
  /** 1698: the account logs in only through the unix socket (Debian's root). */
  | 'socket-auth-only'
  /** TLS with MariaDB failed (upstream.tls): a certificate that does not verify, or a server without TLS. */
  | 'tls'
  | 'other';

export interface LoginFailure {
  readonly kind: LoginFailureKind;
  /** MariaDB's error number, or the socket error code; null when neither is known. */
  readonly upstreamError: number | string | null;
  /** `1045 Access denied for user …` or `ECONNREFUSED`: what MariaDB or the OS said, no secret. */
  readonly detail: string;
  /** Waiting may fix it: nothing answers yet, or the server is busy. */
  readonly transient: boolean;
}

const BY_ERRNO: Readonly<Record<number, LoginFailureKind>> = {
  1040: 'busy', // too many connections
  1053: 'busy', // server shutdown in progress
  1203: 'busy', // user has more than max_user_connections
  1045: 'password-refused',
  1130: 'host-not-allowed',
  1698: 'socket-auth-only',
};

const BY_CODE: Readonly<Record<string, LoginFailureKind>> = {
  ECONNREFUSED: 'nothing-listening',
  ENOTFOUND: 'unknown-host',
  EAI_AGAIN: 'unknown-host',
  ETIMEDOUT: 'no-answer',
  EHOSTUNREACH: 'no-answer',
  ENETUNREACH: 'no-answer',
  ECONNRESET: 'no-answer',
  EPIPE: 'no-answer',
  PROTOCOL_CONNECTION_LOST: 'no-answer',
  PROTOCOL_SEQUENCE_TIMEOUT: 'no-answer',
};

/** node's certificate verification codes, node's and OpenSSL's TLS errors, mysql2's for a server without TLS. */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|HANDSHAKE_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|CERT_)/;

// A name that does not resolve yet is what a container sees before its database's service exists.
const TRANSIENT = new Set<LoginFailureKind>(['nothing-listening', 'unknown-host', 'no-answer', 'busy']);

interface Facts {
  errno?: unknown;
  code?: unknown;
  message?: unknown;
  sqlMessage?: unknown;
  cause?: unknown;
}

export function classifyLoginFailure(error: unknown): LoginFailure {
  // meshgate's errors carry the MariaDB error or socket error as their cause.
  const own = isMeshgateError(error) ? error : null;
  const facts = ((own !== null ? own.cause : error) ?? {}) as Facts;
  const errno = typeof facts.errno === 'number' && facts.errno > 0 ? facts.errno : null;
  const code = typeof facts.code === 'string' && facts.code !== '' ? facts.code : null;
  const text = typeof facts.sqlMessage === 'string' ? facts.sqlMessage : typeof facts.message === 'string' ? facts.message : '';
  if (errno !== null) {
    const kind = BY_ERRNO[errno] ?? 'other';
    return { kind, upstreamError: errno, detail: `${errno} ${text}`.trim(), transient: TRANSIENT.has(kind) };
  }
  if (code !== null && TLS_CODE.test(code)) {
    return { kind: 'tls', upstreamError: code, detail: own?.message ?? `${code}: ${text}`, transient: false };
  }
  if (code !== null && BY_CODE[code] !== undefined) {
    const kind = BY_CODE[code]!;
    return { kind, upstreamError: code, detail: code, transient: TRANSIENT.has(kind) };
  }
  const detail = own?.message ?? (code ?? (text || String(error)));
  return { kind: 'other', upstreamError: code, detail, transient: false };
}

/** A cause for meshgate's own errors that classifyLoginFailure reads back. */
export function mariadbFailure(errno: number, message: string): Error {
  return Object.assign(new Error(message), { errno });
}

export function socketFailure(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}
