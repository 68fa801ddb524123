/**
 * MySQL packet framing: 3-byte little-endian payload length, 1-byte sequence id, payload.
 * A payload of exactly 0xFFFFFF bytes continues in the next packet; the logical message
 * ends with the first shorter packet (possibly empty).
 * https://mariadb.com/kb/en/0-packet/
 */
import { mgError } from '../../../errors/index.ts';
import { MAX_PACKET_PAYLOAD } from './constants.ts';

export const HEADER_BYTES = 4;

export interface Frame {
  /** Sequence id of the first packet of the message. */
  readonly seq: number;
  /** Sequence id of the last packet (seq + packets - 1, modulo 256). */
  readonly lastSeq: number;
  /** The logical payload, continuation packets joined. */
  readonly payload: Buffer;
  /** The message exactly as received, headers included, for relaying unchanged. */
  readonly raw: Buffer;
}

/**
 * Turns a byte stream into whole messages. Refuses a message larger than `maxMessageBytes`
 * as soon as its header says so, before buffering its body.
 */
export class PacketFramer {
  private pending: Buffer | null = null;
  private partialPayloads: Buffer[] = [];
  private partialRaw: Buffer[] = [];
  private partialLength = 0;
  private partialSeq = 0;

  constructor(private readonly maxMessageBytes: number) {}

  /** Bytes received but not yet returned as a message. */
  get buffered(): number {
    return (this.pending?.length ?? 0) + this.partialLength;
  }

  /** Hands back bytes not yet framed (for a protocol switch such as the TLS upgrade). */
  takeRemainder(): Buffer | null {
    const rest = this.pending;
    this.pending = null;
    return rest;
  }

  /**
   * Frames what `chunk` completes. `maxFrames` stops early and keeps the rest unparsed, for
   * a message after which the stream may switch protocol (the SSLRequest before TLS).
   */
  push(chunk: Buffer, maxFrames = Infinity): Frame[] {
    const buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    const frames: Frame[] = [];
    let offset = 0;
    while (buf.length - offset >= HEADER_BYTES && frames.length < maxFrames) {
      const length = buf[offset]! | (buf[offset + 1]! << 8) | (buf[offset + 2]! << 16);
      const seq = buf[offset + 3]!;
      if (this.partialLength + length > this.maxMessageBytes) {
        throw mgError(
          'MG_PACKET_TOO_LARGE',
          `message of at least ${this.partialLength + length} bytes exceeds meshgate's limit of ${this.maxMessageBytes} bytes; send smaller statements or raise listener.maxClientMessageBytes`,
        );
      }
      const end = offset + HEADER_BYTES + length;
      if (end > buf.length) break;
      const payload = buf.subarray(offset + HEADER_BYTES, end);
      const raw = buf.subarray(offset, end);
      offset = end;
      if (length === MAX_PACKET_PAYLOAD) {
        if (this.partialRaw.length === 0) this.partialSeq = seq;
        this.partialPayloads.push(payload);
        this.partialRaw.push(raw);
        this.partialLength += length;
        continue;
      }
      if (this.partialRaw.length === 0) {
        frames.push({ seq, lastSeq: seq, payload, raw });
        continue;
      }
      this.partialPayloads.push(payload);
      this.partialRaw.push(raw);
      frames.push({
        seq: this.partialSeq,
        lastSeq: seq,
        payload: Buffer.concat(this.partialPayloads, this.partialLength + length),
        raw: Buffer.concat(this.partialRaw),
      });
      this.partialPayloads = [];
      this.partialRaw = [];
      this.partialLength = 0;
    }
    if (offset < buf.length) this.pending = buf.subarray(offset);
    return frames;
  }
}

/**
 * Frames a payload as one message starting at sequence id `seq`, splitting it into
 * 16 MiB packets as the protocol requires.
 */
export function encodeMessage(payload: Buffer, seq: number): Buffer {
  if (payload.length < MAX_PACKET_PAYLOAD) {
    const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
    out.writeUIntLE(payload.length, 0, 3);
    out[3] = seq & 0xff;
    payload.copy(out, HEADER_BYTES);
    return out;
  }
  const packets = Math.floor(payload.length / MAX_PACKET_PAYLOAD) + 1;
  const out = Buffer.allocUnsafe(payload.length + packets * HEADER_BYTES);
  let read = 0;
  let write = 0;
  for (let i = 0; i < packets; i++) {
    const length = Math.min(MAX_PACKET_PAYLOAD, payload.length - read);
    out.writeUIntLE(length, write, 3);
    out[write + 3] = (seq + i) & 0xff;
    payload.copy(out, write + HEADER_BYTES, read, read + length);
    read += length;
    write += HEADER_BYTES + length;
  }
  return out;
}

/** How many packets `encodeMessage` makes of a payload this long. */
export function packetCount(payloadLength: number): number {
  return Math.floor(payloadLength / MAX_PACKET_PAYLOAD) + 1;
}
