/**
 * A MySQL client that speaks the protocol by hand, for paths no Node driver takes
 * (COM_STMT_EXECUTE with a cursor, COM_STMT_FETCH, commands pipelined behind an error).
 * It reads answers with its own small readers, written from MariaDB's documentation, not
 * with meshgate's response tracker: a test must not check the tracker against itself.
 * https://mariadb.com/kb/en/com_stmt_execute/  https://mariadb.com/kb/en/com_stmt_fetch/
 */
import type { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Capability, Command, ServerStatus } from '../../src/engines/mysql/codec/constants.ts';
import { encodeMessage, PacketFramer, type Frame } from '../../src/engines/mysql/codec/framer.ts';
import { encodeHandshakeResponse } from '../../src/engines/mysql/codec/handshake.ts';
import { decodeErr } from '../../src/engines/mysql/codec/generic.ts';
import { PayloadReader } from '../../src/engines/mysql/codec/wire.ts';

const CAPS = (Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.SSL | Capability.CONNECT_WITH_DB | Capability.TRANSACTIONS | Capability.MULTI_RESULTS | Capability.PS_MULTI_RESULTS) >>> 0;

/** What a whole answer said, as a client library would report it. */
export type Answer =
  | { readonly kind: 'ok'; readonly affectedRows: number; readonly status: number }
  | { readonly kind: 'error'; readonly code: number; readonly message: string; readonly rows: number }
  /** One or more result sets; `rows` per set; `status` of the last terminator. */
  | { readonly kind: 'rows'; readonly rows: number[]; readonly values: Buffer[][]; readonly status: number }
  /** A cursor opened: metadata only, rows wait for COM_STMT_FETCH. */
  | { readonly kind: 'cursor'; readonly columns: number; readonly status: number };

export interface Prepared {
  readonly kind: 'prepared';
  readonly id: number;
  readonly columns: number;
  readonly params: number;
}

export const command = {
  query: (sql: string) => Buffer.concat([Buffer.from([Command.QUERY]), Buffer.from(sql)]),
  prepare: (sql: string) => Buffer.concat([Buffer.from([Command.STMT_PREPARE]), Buffer.from(sql)]),
  /** COM_STMT_EXECUTE of a statement without parameters; `cursor` sets CURSOR_TYPE_READ_ONLY. */
  execute: (id: number, cursor: boolean) => {
    const b = Buffer.alloc(10);
    b[0] = Command.STMT_EXECUTE;
    b.writeUInt32LE(id >>> 0, 1);
    b[5] = cursor ? 1 : 0;
    b.writeUInt32LE(1, 6);
    return b;
  },
  fetch: (id: number, rows: number) => {
    const b = Buffer.alloc(9);
    b[0] = Command.STMT_FETCH;
    b.writeUInt32LE(id >>> 0, 1);
    b.writeUInt32LE(rows, 5);
    return b;
  },
  reset: (id: number) => Buffer.from([Command.STMT_RESET, id & 0xff, (id >>> 8) & 0xff, (id >>> 16) & 0xff, id >>> 24]),
  close: (id: number) => Buffer.from([Command.STMT_CLOSE, id & 0xff, (id >>> 8) & 0xff, (id >>> 16) & 0xff, id >>> 24]),
  ping: () => Buffer.from([Command.PING]),
};

export interface RawSession {
  readonly deprecateEof: boolean;
  /** Sends commands in one write (pipelined), each as its own message. */
  send(...payloads: Buffer[]): void;
  readPrepare(): Promise<Prepared | Answer>;
  /** The answer to COM_QUERY or COM_STMT_EXECUTE (`cursor`: the execute asked for one). */
  readResult(cursor: boolean): Promise<Answer>;
  /** The answer to COM_STMT_FETCH: rows and an EOF, or an error. */
  readFetch(): Promise<Answer>;
  /** The one packet answering COM_STMT_RESET, COM_PING, … */
  readSingle(): Promise<Answer>;
  /** The next packet's payload as it came (a LOCAL INFILE request, say). */
  readPacket(): Promise<Buffer>;
  /** Writes bytes as they are: packets the test framed itself (a file's content, with its sequence ids). */
  write(bytes: Buffer): void;
  /** Drops the connection at once, as a client that crashes or is killed. */
  destroy(): void;
  close(): Promise<void>;
}

export interface RawSessionOptions {
  readonly port: number;
  readonly database: string;
  readonly ssl: { cert: Buffer; key: Buffer; ca: Buffer };
  readonly deprecateEof: boolean;
  /** How long to wait for any one packet before failing the test; default 5 s. */
  readonly packetTimeoutMs?: number;
  /** Capabilities to claim beyond the usual ones (CLIENT_LOCAL_FILES, say). */
  readonly extraCapabilities?: number;
}

/** Logs in to meshgate over TLS with the workload's certificate. */
export async function openRawSession(options: RawSessionOptions): Promise<RawSession> {
  const caps = (CAPS | (options.deprecateEof ? Capability.DEPRECATE_EOF : 0) | (options.extraCapabilities ?? 0)) >>> 0;
  const login = encodeHandshakeResponse({ capabilities: caps, mariadbCapabilities: 0, maxPacketSize: 1 << 24, charset: 45, username: 'raw', authResponse: Buffer.alloc(0), database: options.database, authPlugin: 'mysql_native_password', attributes: new Map() });
  const raw = netConnect({ host: '127.0.0.1', port: options.port });
  await once(raw, 'data');
  raw.write(encodeMessage(login.subarray(0, 32), 1));
  const secure: TLSSocket = tlsConnect({ socket: raw, ...options.ssl, servername: 'localhost' });
  await once(secure, 'secureConnect');
  const timeoutMs = options.packetTimeoutMs ?? 5000;
  const framer = new PacketFramer(1 << 24);
  const ready: Frame[] = [];
  const waiting: { resolve: (f: Frame) => void; reject: (e: Error) => void }[] = [];
  let closed: Error | null = null;
  secure.on('data', (chunk: Buffer) => {
    for (const frame of framer.push(chunk)) {
      const w = waiting.shift();
      if (w) w.resolve(frame);
      else ready.push(frame);
    }
  });
  const lost = () => {
    closed = new Error('meshgate closed the connection (a client would report error 2013)');
    for (const w of waiting.splice(0)) w.reject(closed);
  };
  secure.on('close', lost);
  secure.on('error', lost);
  const next = (): Promise<Buffer> => {
    if (ready.length > 0) return Promise.resolve(ready.shift()!.payload);
    if (closed !== null) return Promise.reject(closed);
    return new Promise<Frame>((resolve, reject) => {
      const waiter = { resolve: (f: Frame) => (clearTimeout(timer), resolve(f)), reject: (e: Error) => (clearTimeout(timer), reject(e)) };
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(waiter), 1);
        reject(new Error(`no packet within ${timeoutMs} ms: the session is out of step or stuck`));
      }, timeoutMs);
      waiting.push(waiter);
    }).then((f) => f.payload);
  };
  secure.write(encodeMessage(login, 2));
  const greeting = await next();
  if (greeting[0] !== 0x00) throw new Error(`login refused: ${greeting.toString('latin1')}`);

  const deprecateEof = options.deprecateEof;
  const isTerminator = (p: Buffer) => p[0] === 0xfe && p.length < 0xffffff && (deprecateEof || p.length < 9);
  const terminatorStatus = (p: Buffer) => (deprecateEof ? okStatus(p) : p.readUInt16LE(3));
  const error = (p: Buffer, rows = 0): Answer => {
    const e = decodeErr(p);
    return { kind: 'error', code: e.code, message: e.message, rows };
  };
  /** Rows up to a terminator or an error. */
  const readRows = async (values: Buffer[][]): Promise<{ rows: number; status: number } | Answer> => {
    let rows = 0;
    for (;;) {
      const p = await next();
      if (p[0] === 0xff) return error(p, rows);
      if (isTerminator(p)) return { rows, status: terminatorStatus(p) };
      values.push([p]);
      rows++;
    }
  };
  const definitions = async (count: number) => {
    for (let i = 0; i < count; i++) await next();
  };

  return {
    deprecateEof,
    send(...payloads) {
      secure.write(Buffer.concat(payloads.map((p) => encodeMessage(p, 0))));
    },
    async readPrepare() {
      const p = await next();
      if (p[0] === 0xff) return error(p);
      const r = new PayloadReader(p, 'prepare ok');
      r.skip(1);
      const id = r.u32();
      const columns = r.u16();
      const params = r.u16();
      for (const count of [params, columns]) {
        if (count === 0) continue;
        await definitions(count);
        if (!deprecateEof) await next();
      }
      return { kind: 'prepared', id, columns, params };
    },
    async readResult(cursor) {
      const rowsPerSet: number[] = [];
      const values: Buffer[][] = [];
      for (;;) {
        const p = await next();
        if (p[0] === 0xff) return error(p);
        if (p[0] === 0x00) {
          const ok = okPacket(p);
          if (ok.status & ServerStatus.MORE_RESULTS_EXISTS) continue;
          return rowsPerSet.length > 0 ? { kind: 'rows', rows: rowsPerSet, values, status: ok.status } : { kind: 'ok', ...ok };
        }
        const columns = new PayloadReader(p, 'column count').lenenc();
        await definitions(columns);
        if (!deprecateEof) {
          // An opened cursor ends its metadata with an EOF flagged CURSOR_EXISTS; a cursor
          // that fails to open once its metadata is out ends it with an ERR instead.
          const end = await next();
          if (end[0] === 0xff) return error(end);
          if (!isTerminator(end)) throw new Error(`expected EOF after column definitions, got ${end.toString('hex')}`);
          if (cursor && end.readUInt16LE(3) & ServerStatus.CURSOR_EXISTS) return { kind: 'cursor', columns, status: end.readUInt16LE(3) };
        }
        const rest = await readRows(values);
        if ('kind' in rest) return rest;
        // Under DEPRECATE_EOF an opened cursor's metadata ends with an OK-as-EOF flagged CURSOR_EXISTS.
        if (deprecateEof && cursor && rest.rows === 0 && rest.status & ServerStatus.CURSOR_EXISTS) return { kind: 'cursor', columns, status: rest.status };
        rowsPerSet.push(rest.rows);
        if (!(rest.status & ServerStatus.MORE_RESULTS_EXISTS)) return { kind: 'rows', rows: rowsPerSet, values, status: rest.status };
      }
    },
    async readFetch() {
      const values: Buffer[][] = [];
      const rest = await readRows(values);
      if ('kind' in rest) return rest;
      return { kind: 'rows', rows: [rest.rows], values, status: rest.status };
    },
    async readSingle() {
      const p = await next();
      if (p[0] === 0xff) return error(p);
      return { kind: 'ok', affectedRows: 0, status: p[0] === 0x00 ? okStatus(p) : 0 };
    },
    readPacket: next,
    write(bytes) {
      secure.write(bytes);
    },
    destroy() {
      secure.destroy();
    },
    async close() {
      if (closed !== null) return;
      secure.end(encodeMessage(Buffer.from([Command.QUIT]), 0));
      await Promise.race([once(secure, 'close'), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
      secure.destroy();
    },
  };
}

function okPacket(p: Buffer): { affectedRows: number; status: number } {
  const r = new PayloadReader(p, 'ok');
  r.skip(1);
  const affectedRows = r.lenenc();
  r.lenenc();
  return { affectedRows, status: r.remaining >= 2 ? r.u16() : 0 };
}

function okStatus(p: Buffer): number {
  return okPacket(p).status;
}

/** The certificate meshgate presents after a STARTTLS upgrade (no login follows). */
export async function starttlsPeerCertificate(port: number, ssl: { cert: Buffer; key: Buffer; ca: Buffer }): Promise<X509Certificate> {
  const login = encodeHandshakeResponse({ capabilities: CAPS, mariadbCapabilities: 0, maxPacketSize: 1 << 24, charset: 45, username: 'raw', authResponse: Buffer.alloc(0), database: null, authPlugin: 'mysql_native_password', attributes: new Map() });
  const raw = netConnect({ host: '127.0.0.1', port });
  await once(raw, 'data');
  raw.write(encodeMessage(login.subarray(0, 32), 1));
  const secure: TLSSocket = tlsConnect({ socket: raw, ...ssl, servername: 'localhost' });
  try {
    await once(secure, 'secureConnect');
    return secure.getPeerX509Certificate()!;
  } finally {
    secure.destroy();
  }
}
