/**
 * Finds packet boundaries in a byte stream without buffering it: each logical packet's first
 * bytes (enough for any OK/EOF/ERR/PREPARE_OK header and a useful error message) are handed
 * on, the rest is only counted. A payload of exactly 16 MiB continues in the next packet,
 * whose bytes are payload, not a new packet's head.
 * https://mariadb.com/kb/en/0-packet/
 */
import { MAX_PACKET_PAYLOAD } from './constants.ts';
import { HEADER_BYTES } from './framer.ts';

export const HEAD_BYTES = 512;

/** `packetLength`: the length of the packet's first physical part (below 16 MiB: the whole). */
export type HeadListener = (head: Buffer, packetLength: number) => void;

export class PacketHeadScanner {
  private header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  private packetLength = 0;
  private packetLeft = 0;
  /** Head bytes gathered for a packet split across chunks. */
  private headParts: Buffer[] = [];
  private headFill = 0;
  private headWanted = 0;
  /** The current physical packet continues a logical one: its bytes are payload, not a header. */
  private continuation = false;

  constructor(private readonly onHead: HeadListener) {}

  /** A packet is half-read: the stream is not between packets. */
  get midPacket(): boolean {
    return this.headerFill !== 0 || this.continuation;
  }

  scan(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.headerFill < HEADER_BYTES) {
        const take = Math.min(HEADER_BYTES - this.headerFill, chunk.length - offset);
        if (this.headerFill === 0 && take === HEADER_BYTES) {
          this.packetLength = chunk[offset]! | (chunk[offset + 1]! << 8) | (chunk[offset + 2]! << 16);
        } else {
          chunk.copy(this.header, this.headerFill, offset, offset + take);
          if (this.headerFill + take < HEADER_BYTES) {
            this.headerFill += take;
            return;
          }
          this.packetLength = this.header[0]! | (this.header[1]! << 8) | (this.header[2]! << 16);
        }
        offset += take;
        this.headerFill = HEADER_BYTES;
        this.packetLeft = this.packetLength;
        this.headWanted = this.continuation ? 0 : Math.min(this.packetLength, HEAD_BYTES);
        this.headFill = 0;
        if (this.headWanted === 0 && !this.continuation) this.onHead(Buffer.alloc(0), this.packetLength);
      }
      if (this.headFill < this.headWanted) {
        const take = Math.min(this.headWanted - this.headFill, chunk.length - offset);
        if (this.headFill === 0 && take === this.headWanted) {
          this.headFill = take;
          this.onHead(chunk.subarray(offset, offset + take), this.packetLength);
        } else {
          this.headParts.push(Buffer.from(chunk.subarray(offset, offset + take)));
          this.headFill += take;
          if (this.headFill === this.headWanted) {
            const head = Buffer.concat(this.headParts, this.headFill);
            this.headParts = [];
            this.onHead(head, this.packetLength);
          }
        }
        offset += take;
        this.packetLeft -= take;
      }
      const skip = Math.min(this.packetLeft, chunk.length - offset);
      offset += skip;
      this.packetLeft -= skip;
      if (this.packetLeft === 0 && this.headFill === this.headWanted) {
        this.continuation = this.packetLength === MAX_PACKET_PAYLOAD;
        this.headerFill = 0;
      }
    }
  }
}
