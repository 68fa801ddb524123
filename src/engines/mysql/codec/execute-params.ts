/**
 * The parameters of a COM_STMT_EXECUTE, read for the audit. Pure: bytes in, facts out.
 * https://mariadb.com/kb/en/com_stmt_execute/
 *
 *   0x17 · statement id (4) · flags (1) · iteration count (4)
 *   if the statement takes parameters:
 *     NULL bitmap ((n + 7) / 8) · send types (1) · [type (1), flag (1)] × n when sent
 *     each parameter that is not NULL and was not sent as long data, binary-encoded
 *
 * Types a client does not send again are those of the statement's previous execute: the
 * server keeps them, and so does the caller of this reader. A parameter sent with
 * COM_STMT_SEND_LONG_DATA is not in the execute at all (sql_prepare.cc skips it too).
 *
 * Nothing here may refuse a statement: MariaDB answers a malformed execute itself. An
 * execute this cannot read yields a `problem`, and the audit says the parameters are unread.
 * https://mariadb.com/kb/en/resultset-row/#binary-resultset-row (value encodings)
 */
import type { AuditParameter } from '../../../audit/index.ts';
import { PayloadReader } from './wire.ts';

/** One parameter's binding: its field type and the unsigned flag, as the client sent them. */
export interface ParameterType {
  readonly type: number;
  readonly unsigned: boolean;
}

export interface ExecuteParameters {
  /** The bindings in force after this execute (what the next one inherits if it sends none). */
  readonly types: readonly ParameterType[];
  readonly parameters: readonly AuditParameter[];
}

export interface ExecuteReadOptions {
  readonly parameterCount: number;
  /** The bindings of the statement's previous execute, if any. */
  readonly previousTypes: readonly ParameterType[] | null;
  /** Parameter indexes sent as long data since the last execute or reset. */
  readonly longData: ReadonlySet<number>;
  readonly mode: 'types' | 'values';
  /** How many bytes of a string value the audit keeps. */
  readonly maxValueBytes: number;
}

/** MariaDB field types (include/mysql_com.h, enum_field_types). */
const TYPE_NAMES = new Map<number, string>([
  [0, 'DECIMAL'], [1, 'TINY'], [2, 'SHORT'], [3, 'LONG'], [4, 'FLOAT'], [5, 'DOUBLE'], [6, 'NULL'],
  [7, 'TIMESTAMP'], [8, 'LONGLONG'], [9, 'INT24'], [10, 'DATE'], [11, 'TIME'], [12, 'DATETIME'],
  [13, 'YEAR'], [14, 'NEWDATE'], [15, 'VARCHAR'], [16, 'BIT'], [245, 'JSON'], [246, 'NEWDECIMAL'],
  [247, 'ENUM'], [248, 'SET'], [249, 'TINY_BLOB'], [250, 'MEDIUM_BLOB'], [251, 'LONG_BLOB'],
  [252, 'BLOB'], [253, 'VAR_STRING'], [254, 'STRING'], [255, 'GEOMETRY'],
]);

const UNSIGNED_FLAG = 0x80;
/** Offset of the NULL bitmap: command, statement id, flags, iteration count. */
const PARAMETERS_OFFSET = 10;

export function typeName(binding: ParameterType): string {
  const name = TYPE_NAMES.get(binding.type) ?? `TYPE_${binding.type}`;
  return binding.unsigned ? `${name} UNSIGNED` : name;
}

export function readExecuteParameters(payload: Buffer, options: ExecuteReadOptions): ExecuteParameters | { readonly problem: string } {
  const count = options.parameterCount;
  if (count === 0) return { types: [], parameters: [] };
  try {
    const r = new PayloadReader(payload, 'COM_STMT_EXECUTE');
    r.skip(PARAMETERS_OFFSET);
    const nulls = r.bytes((count + 7) >> 3);
    let types = options.previousTypes;
    if (r.u8() === 1) {
      const sent: ParameterType[] = [];
      for (let i = 0; i < count; i++) sent.push({ type: r.u8(), unsigned: (r.u8() & UNSIGNED_FLAG) !== 0 });
      types = sent;
    }
    if (types === null || types.length !== count) return { problem: 'the execute sends no parameter types and none are known from an earlier one' };
    const parameters: AuditParameter[] = [];
    for (let i = 0; i < count; i++) {
      const binding = types[i]!;
      const type = typeName(binding);
      if (options.longData.has(i)) parameters.push({ type, longData: true });
      else if ((nulls[i >> 3]! & (1 << (i & 7))) !== 0) parameters.push(options.mode === 'values' ? { type, value: null } : { type });
      else parameters.push(readValue(r, binding, type, options));
    }
    return { types, parameters };
  } catch (error) {
    return { problem: error instanceof Error ? error.message : String(error) };
  }
}

function readValue(r: PayloadReader, binding: ParameterType, type: string, options: ExecuteReadOptions): AuditParameter {
  const values = options.mode === 'values';
  switch (binding.type) {
    case 1: // TINY
      return number(type, values, binding.unsigned ? r.u8() : r.bytes(1).readInt8(0));
    case 2: // SHORT
    case 13: // YEAR
      return number(type, values, binding.unsigned ? r.u16() : r.bytes(2).readInt16LE(0));
    case 3: // LONG
    case 9: // INT24
      return number(type, values, binding.unsigned ? r.u32() : r.bytes(4).readInt32LE(0));
    case 8: {
      const raw = r.bytes(8);
      const big = binding.unsigned ? raw.readBigUInt64LE(0) : raw.readBigInt64LE(0);
      const exact = big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER);
      return values ? { type, value: exact ? Number(big) : big.toString() } : { type };
    }
    case 4: // FLOAT
      return number(type, values, r.bytes(4).readFloatLE(0));
    case 5: // DOUBLE
      return number(type, values, r.bytes(8).readDoubleLE(0));
    case 6: // NULL
      return values ? { type, value: null } : { type };
    case 7: // TIMESTAMP
    case 10: // DATE
    case 12: // DATETIME
    case 14: // NEWDATE
      return text(type, values, dateTime(r.bytes(r.u8())));
    case 11: // TIME
      return text(type, values, time(r.bytes(r.u8())));
    default: {
      // DECIMAL, strings, blobs, BIT, JSON, GEOMETRY…: a length-encoded string.
      const bytes = r.lenencBytes();
      if (!values) return { type, bytes: bytes.length };
      const kept = bytes.subarray(0, options.maxValueBytes);
      const value = printable(kept, bytes.length > kept.length);
      return bytes.length > kept.length ? { type, value, truncated: true, bytes: bytes.length } : { type, value, bytes: bytes.length };
    }
  }
}

function number(type: string, values: boolean, value: number): AuditParameter {
  if (!values) return { type };
  // JSON has no NaN or Infinity.
  return { type, value: Number.isFinite(value) ? value : String(value) };
}

function text(type: string, values: boolean, value: string): AuditParameter {
  return values ? { type, value } : { type };
}

/** UTF-8 text as is; anything else (binary, another charset) as hex, marked by its 0x. */
function printable(bytes: Buffer, cut: boolean): string {
  // A prefix may end inside a character: the last three bytes may be its first part.
  for (let end = bytes.length; end >= Math.max(0, bytes.length - (cut ? 3 : 0)); end--) {
    const part = bytes.subarray(0, end);
    const decoded = part.toString('utf8');
    if (!decoded.includes('\uFFFD') && Buffer.byteLength(decoded) === part.length && !hasControl(decoded)) return decoded;
  }
  return `0x${bytes.toString('hex')}`;
}

function hasControl(text: string): boolean {
  // Tabs and line breaks are text; other control characters mean binary.
  return /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(text);
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** 0, 4, 7 or 11 bytes: year (2), month, day, hour, minute, second, microseconds (4). */
function dateTime(b: Buffer): string {
  if (b.length === 0) return '0000-00-00 00:00:00';
  if (b.length < 4) return `0x${b.toString('hex')}`;
  const date = `${pad(b.readUInt16LE(0), 4)}-${pad(b[2]!)}-${pad(b[3]!)}`;
  if (b.length < 7) return date;
  const clock = `${date} ${pad(b[4]!)}:${pad(b[5]!)}:${pad(b[6]!)}`;
  return b.length >= 11 ? `${clock}.${pad(b.readUInt32LE(7), 6)}` : clock;
}

/** 0, 8 or 12 bytes: negative (1), days (4), hour, minute, second, microseconds (4). */
function time(b: Buffer): string {
  if (b.length === 0) return '00:00:00';
  if (b.length < 8) return `0x${b.toString('hex')}`;
  const sign = b[0] === 1 ? '-' : '';
  const days = b.readUInt32LE(1);
  const clock = `${days > 0 ? `${days} ` : ''}${pad(b[5]!)}:${pad(b[6]!)}:${pad(b[7]!)}`;
  return `${sign}${b.length >= 12 ? `${clock}.${pad(b.readUInt32LE(8), 6)}` : clock}`;
}
