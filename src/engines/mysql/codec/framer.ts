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
 *
 * Linear, as GrpcMessageReader: chunks are kept as received and joined once, when the whole
 * message is there, so a 16 MiB statement in 64 KiB chunks is copied once, not once per
 * chunk, and memory follows the bytes received, never a length a header merely claims. A
 * message inside one chunk (the usual case: many small packets per read) is a view of it,
 * no copy. A message of several 0xFFFFFF packets costs a second copy: its `payload`,
 * which leaves out the inner headers.
 */
export class PacketFramer {
  /** Bytes not yet returned, as received; the first chunk is read from `head` on. */
  private chunks: Buffer[] = [];
  private head = 0;
  private pendingBytes = 0;
  // The message at the front, as far as its headers have been read: `known` bytes of
  // packets, complete once a packet shorter than 0xFFFFFF has been seen.
  private known = 0;
  private packets = 0;
  private payloadBytes = 0;
  private firstSeq = 0;
  private lastSeq = 0;
  private complete = false;
  /** A header split between chunks, gathered. */
  private readonly straddling = Buffer.alloc(HEADER_BYTES);

  constructor(private readonly maxMessageBytes: number) {}

  /** Bytes received but not yet returned as a message. */
  get buffered(): number {
    return this.pendingBytes;
  }

  /** Hands back bytes not yet framed (for a protocol switch such as the TLS upgrade). */
  takeRemainder(): Buffer | null {
    if (this.pendingBytes === 0) return null;
    const rest = this.take(this.pendingBytes);
    this.startMessage();
    return rest;
  }

  /**
   * Frames what `chunk` completes. `maxFrames` stops early and keeps the rest unparsed, for
   * a message after which the stream may switch protocol (the SSLRequest before TLS).
   */
  push(chunk: Buffer, maxFrames = Infinity): Frame[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.pendingBytes += chunk.length;
    }
    const frames: Frame[] = [];
    while (frames.length < maxFrames) {
      while (!this.complete && this.pendingBytes >= this.known + HEADER_BYTES) this.readHeader();
      if (!this.complete || this.pendingBytes < this.known) break;
      frames.push(this.takeMessage());
    }
    return frames;
  }

  /** Reads the packet header at `known`, which may straddle chunks, and checks the limit. */
  private readHeader(): void {
    let at = this.head + this.known;
    let i = 0;
    while (at >= this.chunks[i]!.length) at -= this.chunks[i++]!.length;
    let bytes = this.chunks[i]!;
    if (at + HEADER_BYTES > bytes.length) {
      for (let n = 0; n < HEADER_BYTES; n++, at++) {
        if (at === bytes.length) {
          bytes = this.chunks[++i]!;
          at = 0;
        }
        this.straddling[n] = bytes[at]!;
      }
      bytes = this.straddling;
      at = 0;
    }
    const length = bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16);
    const seq = bytes[at + 3]!;
    if (this.payloadBytes + length > this.maxMessageBytes) {
      throw mgError(
        'MG_PACKET_TOO_LARGE',
        `message of at least ${this.payloadBytes + length} bytes exceeds meshgate's limit of ${this.maxMessageBytes} bytes; send smaller statements or raise listener.maxClientMessageBytes`,
      );
    }
    if (this.packets === 0) this.firstSeq = seq;
    this.lastSeq = seq;
    this.packets++;
    this.payloadBytes += length;
    this.known += HEADER_BYTES + length;
    this.complete = length < MAX_PACKET_PAYLOAD;
  }

  private takeMessage(): Frame {
    const raw = this.take(this.known);
    let payload = raw.subarray(HEADER_BYTES);
    if (this.packets > 1) {
      payload = Buffer.allocUnsafe(this.payloadBytes);
      let write = 0;
      for (let read = 0; read < raw.length; ) {
        const length = raw.readUIntLE(read, 3);
        write += raw.copy(payload, write, read + HEADER_BYTES, read + HEADER_BYTES + length);
        read += HEADER_BYTES + length;
      }
    }
    const frame = { seq: this.firstSeq, lastSeq: this.lastSeq, payload, raw };
    this.startMessage();
    return frame;
  }

  private startMessage(): void {
    this.known = 0;
    this.packets = 0;
    this.payloadBytes = 0;
    this.complete = false;
  }

  /** The next `n` pending bytes: a view when one chunk holds them, else joined once. */
  private take(n: number): Buffer {
    this.pendingBytes -= n;
    const first = this.chunks[0]!;
    if (this.head + n < first.length) {
      this.head += n;
      return first.subarray(this.head - n, this.head);
    }
    const parts: Buffer[] = [];
    let used = 0;
    for (let left = n; left > 0; ) {
      const chunk = this.chunks[used]!;
      const end = Math.min(chunk.length, this.head + left);
      parts.push(this.head === 0 && end === chunk.length ? chunk : chunk.subarray(this.head, end));
      left -= end - this.head;
      if (end < chunk.length) this.head = end;
      else {
        this.head = 0;
        used++;
      }
    }
    this.chunks.splice(0, used);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
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
