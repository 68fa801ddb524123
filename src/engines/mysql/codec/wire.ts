/**
 * Primitive types of the MySQL protocol: fixed and length-encoded integers and strings.
 * https://mariadb.com/kb/en/protocol-data-types/
 * Every read is checked against the end of the payload; a short or lying payload throws
 * MG_PACKET_MALFORMED instead of reading past it.
 */
import { mgError } from '../../../errors/index.ts';

export class PayloadReader {
  offset = 0;
  constructor(
    readonly buf: Buffer,
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  private need(bytes: number): void {
    if (bytes < 0 || this.offset + bytes > this.buf.length) {
      throw mgError(
        'MG_PACKET_MALFORMED',
        `malformed ${this.what}: needs ${bytes} more byte(s) at offset ${this.offset} of ${this.buf.length}; use a standard MySQL/MariaDB client`,
      );
    }
  }

  u8(): number {
    this.need(1);
    return this.buf[this.offset++]!;
  }

  u16(): number {
    this.need(2);
    const value = this.buf.readUInt16LE(this.offset);
    this.offset += 2;
    return value;
  }

  u24(): number {
    this.need(3);
    const value = this.buf.readUIntLE(this.offset, 3);
    this.offset += 3;
    return value;
  }

  u32(): number {
    this.need(4);
    const value = this.buf.readUInt32LE(this.offset);
    this.offset += 4;
    return value;
  }

  /** Length-encoded integer; values above 2^53 are refused (no real length is that big). */
  lenenc(): number {
    const first = this.u8();
    if (first < 0xfb) return first;
    if (first === 0xfc) return this.u16();
    if (first === 0xfd) return this.u24();
    if (first === 0xfe) {
      this.need(8);
      const value = this.buf.readBigUInt64LE(this.offset);
      this.offset += 8;
      if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw mgError('MG_PACKET_MALFORMED', `malformed ${this.what}: length-encoded integer out of range`);
      }
      return Number(value);
    }
    throw mgError('MG_PACKET_MALFORMED', `malformed ${this.what}: 0x${first.toString(16)} is not a length-encoded integer`);
  }

  bytes(length: number): Buffer {
    this.need(length);
    const value = this.buf.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  skip(length: number): void {
    this.need(length);
    this.offset += length;
  }

  /** NUL-terminated bytes (the terminator is consumed, not returned). */
  nulBytes(): Buffer {
    const end = this.buf.indexOf(0, this.offset);
    if (end < 0) {
      throw mgError('MG_PACKET_MALFORMED', `malformed ${this.what}: unterminated string at offset ${this.offset}`);
    }
    const value = this.buf.subarray(this.offset, end);
    this.offset = end + 1;
    return value;
  }

  nulString(): string {
    return this.nulBytes().toString('utf8');
  }

  lenencBytes(): Buffer {
    return this.bytes(this.lenenc());
  }

  restBytes(): Buffer {
    const value = this.buf.subarray(this.offset);
    this.offset = this.buf.length;
    return value;
  }
}

export function lenencLength(value: number): number {
  if (value < 0xfb) return 1;
  if (value <= 0xffff) return 3;
  if (value <= 0xffffff) return 4;
  return 9;
}

/** Writes a length-encoded integer at `offset`; returns the offset after it. */
export function writeLenenc(target: Buffer, value: number, offset: number): number {
  if (value < 0xfb) {
    target[offset] = value;
    return offset + 1;
  }
  if (value <= 0xffff) {
    target[offset] = 0xfc;
    target.writeUInt16LE(value, offset + 1);
    return offset + 3;
  }
  if (value <= 0xffffff) {
    target[offset] = 0xfd;
    target.writeUIntLE(value, offset + 1, 3);
    return offset + 4;
  }
  target[offset] = 0xfe;
  target.writeBigUInt64LE(BigInt(value), offset + 1);
  return offset + 9;
}

/** Growable builder for the few messages meshgate composes itself (never on the row path). */
export class PayloadWriter {
  private parts: Buffer[] = [];
  private length = 0;

  u8(value: number): this {
    return this.push(Buffer.of(value & 0xff));
  }

  u16(value: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16LE(value);
    return this.push(b);
  }

  u32(value: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(value >>> 0);
    return this.push(b);
  }

  lenenc(value: number): this {
    const b = Buffer.allocUnsafe(lenencLength(value));
    writeLenenc(b, value, 0);
    return this.push(b);
  }

  bytes(value: Buffer | string): this {
    return this.push(typeof value === 'string' ? Buffer.from(value, 'utf8') : value);
  }

  zeros(count: number): this {
    return this.push(Buffer.alloc(count));
  }

  nulString(value: Buffer | string): this {
    return this.bytes(value).u8(0);
  }

  lenencBytes(value: Buffer | string): this {
    const b = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    return this.lenenc(b.length).push(b);
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }

  private push(b: Buffer): this {
    this.parts.push(b);
    this.length += b.length;
    return this;
  }
}
