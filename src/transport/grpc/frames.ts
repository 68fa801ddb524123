/**
 * gRPC length-prefixed messages over an HTTP/2 DATA stream, as pure functions over
 * Buffers: a 1-byte compressed flag, a 4-byte big-endian length, then the message.
 * https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md (Length-Prefixed-Message)
 */
import { mgError } from '../../errors/index.ts';

export const GRPC_PREFIX_BYTES = 5;

export interface GrpcMessage {
  readonly compressed: boolean;
  readonly payload: Buffer;
  /** Prefix and payload as received: what is forwarded, byte for byte. */
  readonly raw: Buffer;
}

/**
 * Splits a stream of DATA chunks into messages. Refuses a message larger than the limit
 * from its prefix, before buffering its body.
 */
export class GrpcMessageReader {
  /** Chunks of an incomplete message, joined once it is whole: never copied per chunk. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Length of the message being gathered (prefix included), once its prefix is known. */
  private needed = 0;

  constructor(private readonly maxMessageBytes: number) {}

  /** Bytes held back waiting for the rest of a message. */
  get buffered(): number {
    return this.pendingBytes;
  }

  push(chunk: Buffer): GrpcMessage[] {
    if (chunk.length === 0) return [];
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.needed === 0 && this.pendingBytes >= GRPC_PREFIX_BYTES) this.needed = this.prefixLength();
    if (this.needed === 0 || this.pendingBytes < this.needed) return [];
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.needed = 0;
    const messages: GrpcMessage[] = [];
    let offset = 0;
    while (data.length - offset >= GRPC_PREFIX_BYTES) {
      const end = offset + GRPC_PREFIX_BYTES + this.checkedLength(data, offset);
      if (end > data.length) break;
      const raw = data.subarray(offset, end);
      messages.push({ compressed: data[offset] === 1, payload: raw.subarray(GRPC_PREFIX_BYTES), raw });
      offset = end;
    }
    if (offset < data.length) {
      const rest = data.subarray(offset);
      this.pending.push(rest);
      this.pendingBytes = rest.length;
      if (rest.length >= GRPC_PREFIX_BYTES) this.needed = GRPC_PREFIX_BYTES + this.checkedLength(rest, 0);
    }
    return messages;
  }

  /** The whole length of the message whose prefix starts the pending bytes. */
  private prefixLength(): number {
    const head = this.pending.length === 1 || this.pending[0]!.length >= GRPC_PREFIX_BYTES ? this.pending[0]! : Buffer.concat(this.pending).subarray(0, GRPC_PREFIX_BYTES);
    return GRPC_PREFIX_BYTES + this.checkedLength(head, 0);
  }

  /** Refuses a bad flag or an oversized message from the prefix, before buffering the body. */
  private checkedLength(data: Buffer, offset: number): number {
    const flag = data[offset]!;
    if (flag > 1) throw mgError('MG_PACKET_MALFORMED', `a gRPC message starts with flag byte 0x${flag.toString(16)}, which is neither 0 nor 1`);
    const length = data.readUInt32BE(offset + 1);
    if (length > this.maxMessageBytes) {
      throw mgError('MG_PACKET_TOO_LARGE', `a gRPC message of ${length} bytes is larger than meshgate accepts (${this.maxMessageBytes})`);
    }
    return length;
  }
}

export function encodeGrpcMessage(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(GRPC_PREFIX_BYTES + payload.length);
  out[0] = 0;
  out.writeUInt32BE(payload.length, 1);
  payload.copy(out, GRPC_PREFIX_BYTES);
  return out;
}
