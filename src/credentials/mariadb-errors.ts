/**
 * How meshgate reads what MariaDB and mysql2 answer its admin login: which failures are
 * worth a retry, which mean a refused login or a missing privilege, and how to keep the
 * passwords meshgate sends out of the errors that travel to logs.
 */
import mysql from 'mysql2/promise';
import { isMeshgateError, mgError } from '../errors/index.ts';

export interface RetryOptions {
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/** Server error numbers meshgate reacts to (mysql2 has no names for the newer ones). */
export const ER = {
  dbAccessDenied: 1044, accessDenied: 1045, noSuchThread: 1094, killDenied: 1095, hostNotPrivileged: 1130,
  tableAccessDenied: 1142, specificAccessDenied: 1227, invalidRole: 1959,
  /** Also what GRANT <role> answers when the admin lacks the role WITH ADMIN OPTION. */
  accessDeniedNoPassword: 1698,
} as const;
/** Too many connections, shutdown, connection killed, server gone away, lost connection. */
const RETRYABLE_ERRNOS = new Set<number>([1040, 1053, 1203, 1927, 2006, 2013]);
/** Client-side failures to reach the server or keep the socket. */
const RETRYABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT',
]);
export const LOGIN_DENIED = new Set<number>([ER.accessDenied, ER.accessDeniedNoPassword, ER.hostNotPrivileged]);
export const PRIVILEGE_DENIED = new Set<number>([
  ER.dbAccessDenied, ER.killDenied, ER.tableAccessDenied, ER.specificAccessDenied, ER.accessDeniedNoPassword,
]);

export interface SqlError { code?: string; errno?: number; fatal?: boolean; message?: string; sqlMessage?: string; sql?: string; stack?: string }

export function roleUnknown(role: string, cause?: unknown): Error {
  return mgError('MG_LEASE_ROLE_UNKNOWN',
    `MariaDB has no role '${role}': create it (CREATE ROLE ${role}; GRANT ... TO ${role}; ` +
    `GRANT ${role} TO <meshgate admin> WITH ADMIN OPTION) or fix the policy's to.mariadb.role`, cause);
}

export function isConnectionError(error: unknown): boolean {
  if (isMeshgateError(error) || typeof error !== 'object' || error === null) return false;
  const { code, errno, fatal } = error as SqlError;
  if (errno !== undefined && LOGIN_DENIED.has(errno)) return false;
  return (code !== undefined && RETRYABLE_CODES.has(code)) || (errno !== undefined && RETRYABLE_ERRNOS.has(errno)) || fatal === true;
}

export function errnoOf(error: unknown): number | undefined {
  return typeof error === 'object' && error !== null ? (error as SqlError).errno : undefined;
}

export function describe(error: unknown): string {
  const { code, errno } = (error ?? {}) as SqlError;
  if (code && errno && errno > 0) return `${code} ${errno}`;
  if (errno && errno > 0) return `MariaDB error ${errno}`;
  return code ?? (error instanceof Error ? error.message : 'unknown error');
}

/** Exponential with jitter, so several meshgate replicas do not retry in lockstep. */
export function backoff(retry: RetryOptions, attempt: number): number {
  const ceiling = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/**
 * mysql2 formats placeholders on the client, so a failed statement's `sql` (and sometimes
 * its message) holds the password in clear; errors travel to logs, so secrets go first.
 */
export function scrub(error: unknown, secrets: readonly string[]): unknown {
  if (typeof error !== 'object' || error === null) return error;
  const target = error as SqlError;
  const forms = secrets.filter((s) => s.length > 0).flatMap((s) => [s, mysql.escape(s).slice(1, -1)]);
  for (const key of ['message', 'sqlMessage', 'sql', 'stack'] as const) {
    let value = target[key];
    if (typeof value !== 'string') continue;
    for (const form of forms) value = value.replaceAll(form, '<redacted>');
    target[key] = value;
  }
  if (typeof target.sql === 'string') target.sql = target.sql.replace(/IDENTIFIED BY .*/i, 'IDENTIFIED BY <redacted>');
  return error;
}
