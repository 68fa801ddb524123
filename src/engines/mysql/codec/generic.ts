/**
 * The generic response packets: OK, ERR and EOF.
 * https://mariadb.com/kb/en/ok_packet/  https://mariadb.com/kb/en/err_packet/  https://mariadb.com/kb/en/eof_packet/
 */
import { Header, ServerStatus, SessionTrack } from './constants.ts';
import { PayloadReader, PayloadWriter } from './wire.ts';

export interface OkPacket {
  readonly affectedRows: number;
  readonly lastInsertId: number;
  readonly status: number;
  readonly warnings: number;
}

export interface ErrPacket {
  readonly code: number;
  readonly sqlState: string;
  readonly message: string;
}

export function encodeOk(ok: Partial<OkPacket> = {}): Buffer {
  return new PayloadWriter()
    .u8(Header.OK)
    .lenenc(ok.affectedRows ?? 0)
    .lenenc(ok.lastInsertId ?? 0)
    .u16(ok.status ?? 0)
    .u16(ok.warnings ?? 0)
    .toBuffer();
}

/** Decodes an OK packet, or an EOF-terminator in OK form (header 0xFE, DEPRECATE_EOF). */
export function decodeOk(payload: Buffer): OkPacket {
  const r = new PayloadReader(payload, 'OK packet');
  r.skip(1);
  const affectedRows = r.lenenc();
  const lastInsertId = r.lenenc();
  const status = r.remaining >= 2 ? r.u16() : 0;
  const warnings = r.remaining >= 2 ? r.u16() : 0;
  return { affectedRows, lastInsertId, status, warnings };
}

/**
 * The current database an OK packet announces in its session state information (MariaDB
 * sends it with CLIENT_SESSION_TRACK and session_track_schema, both defaults): the new name,
 * '' when the session has none now, undefined when the packet says nothing about it.
 * https://mariadb.com/kb/en/ok_packet/
 */
export function sessionSchemaChange(payload: Buffer): string | undefined {
  const r = new PayloadReader(payload, 'OK packet');
  r.skip(1);
  r.lenenc();
  r.lenenc();
  if (r.remaining < 4) return undefined;
  const status = r.u16();
  r.skip(2);
  if (!(status & ServerStatus.SESSION_STATE_CHANGED) || r.remaining === 0) return undefined;
  r.lenencBytes(); // info
  const state = new PayloadReader(r.lenencBytes(), 'session state information');
  let schema: string | undefined;
  while (state.remaining > 0) {
    const type = state.u8();
    const data = state.lenencBytes();
    if (type === SessionTrack.SCHEMA) schema = new PayloadReader(data, 'schema change').lenencBytes().toString('utf8');
  }
  return schema;
}

export function encodeErr(err: ErrPacket): Buffer {
  return new PayloadWriter()
    .u8(Header.ERR)
    .u16(err.code)
    .bytes('#')
    .bytes(err.sqlState.padEnd(5, '0').slice(0, 5))
    .bytes(err.message)
    .toBuffer();
}

export function decodeErr(payload: Buffer): ErrPacket {
  const r = new PayloadReader(payload, 'ERR packet');
  r.skip(1);
  const code = r.u16();
  let sqlState = '';
  if (r.remaining >= 6 && r.buf[r.offset] === 0x23 /* '#' */) {
    r.skip(1);
    sqlState = r.bytes(5).toString('latin1');
  }
  return { code, sqlState, message: r.restBytes().toString('utf8') };
}

export interface EofPacket {
  readonly warnings: number;
  readonly status: number;
}

export function decodeEof(payload: Buffer): EofPacket {
  const r = new PayloadReader(payload, 'EOF packet');
  r.skip(1);
  if (r.remaining < 4) return { warnings: 0, status: 0 };
  return { warnings: r.u16(), status: r.u16() };
}

export function encodeEof(eof: Partial<EofPacket> = {}): Buffer {
  return new PayloadWriter()
    .u8(Header.EOF)
    .u16(eof.warnings ?? 0)
    .u16(eof.status ?? 0)
    .toBuffer();
}

/** An EOF packet proper: header 0xFE and shorter than 9 bytes (a row cannot be). */
export function isEofPacket(payload: Buffer): boolean {
  return payload.length < 9 && payload[0] === Header.EOF;
}
