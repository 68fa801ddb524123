/** How meshgate's error kinds look to a MySQL client: errno and SQLSTATE it understands. */
import type { MeshgateError } from '../../errors/index.ts';
import type { ErrPacket } from './codec/generic.ts';

const BY_KIND: Readonly<Record<MeshgateError['kind'], { code: number; sqlState: string }>> = {
  unauthenticated: { code: 1045, sqlState: '28000' }, // ER_ACCESS_DENIED_ERROR
  access_denied: { code: 1044, sqlState: '42000' }, // ER_DBACCESS_DENIED_ERROR
  bad_request: { code: 1047, sqlState: '08S01' }, // ER_UNKNOWN_COM_ERROR
  limit_exceeded: { code: 1153, sqlState: '08S01' }, // ER_NET_PACKET_TOO_LARGE
  unavailable: { code: 1105, sqlState: 'HY000' }, // ER_UNKNOWN_ERROR
  config: { code: 1105, sqlState: 'HY000' },
  internal: { code: 1105, sqlState: 'HY000' },
};

/**
 * Codes a client should tell apart from their kind's default: a throttled statement is
 * MariaDB's own "resource limit" error, which pools and ORMs already back off on.
 */
const BY_CODE: Readonly<Partial<Record<MeshgateError['code'], { code: number; sqlState: string }>>> = {
  MG_COMMAND_FORBIDDEN: { code: 1227, sqlState: '42000' }, // ER_SPECIFIC_ACCESS_DENIED_ERROR
  MG_THROTTLED: { code: 1226, sqlState: '42000' }, // ER_USER_LIMIT_REACHED
  MG_THROTTLE_TIMEOUT: { code: 1226, sqlState: '42000' },
  MG_UPSTREAM_BUSY: { code: 1203, sqlState: '42000' }, // ER_TOO_MANY_USER_CONNECTIONS
  // What MariaDB itself says to its sessions when it shuts down: pools drop the connection and open another.
  MG_SHUTTING_DOWN: { code: 1053, sqlState: '08S01' }, // ER_SERVER_SHUTDOWN
};

const UPSTREAM_ERR = Symbol('meshgate.upstreamErr');

/**
 * The cause of an MG_UPSTREAM_REFUSED error: MariaDB's own ERR packet, which the client gets
 * unchanged (as it would direct), and its errno, which login-failure classification reads.
 */
export function upstreamErr(err: ErrPacket): Error {
  return Object.assign(new Error(err.message), { errno: err.code, [UPSTREAM_ERR]: err });
}

export function toErrPacket(error: MeshgateError): ErrPacket {
  if (error.code === 'MG_UPSTREAM_REFUSED') {
    const own = (error.cause as { [UPSTREAM_ERR]?: ErrPacket } | undefined)?.[UPSTREAM_ERR];
    if (own !== undefined) return own;
  }
  const base = BY_CODE[error.code] ?? BY_KIND[error.kind];
  return { ...base, message: `[${error.code}] ${error.message}` };
}
