/**
 * Two connected in-memory streams, like the two ends of a TCP connection: what one side
 * writes, the other reads; ending one ends the other's reading; destroying one closes
 * both. For unit tests of sessions and relays without a server or a port (Node 20 has no
 * stream.duplexPair yet).
 */
import { Duplex } from 'node:stream';

export class MemorySocket extends Duplex {
  peer!: MemorySocket;
  readonly remoteAddress: string;
  readonly remotePort: number;
  bytesRead = 0;
  /** Everything this side has received, for assertions. */
  readonly received: Buffer[] = [];

  constructor(address: string, port: number) {
    super({ allowHalfOpen: false });
    this.remoteAddress = address;
    this.remotePort = port;
  }

  setNoDelay(): this {
    return this;
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    const peer = this.peer;
    // Delivered on a later tick, as a network would: no re-entrant reads inside write().
    setImmediate(() => {
      if (peer.destroyed) return done();
      peer.bytesRead += chunk.length;
      peer.received.push(chunk);
      peer.push(chunk);
      done();
    });
  }

  override _final(done: (error?: Error | null) => void): void {
    setImmediate(() => {
      if (!this.peer.destroyed) this.peer.push(null);
      done();
    });
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    setImmediate(() => {
      if (!this.peer.destroyed) this.peer.destroy();
    });
    done(error);
  }

  /** Everything received so far, as one buffer. */
  all(): Buffer {
    return Buffer.concat(this.received);
  }
}

/** [client side, server side]: the server side's remote address is the client's. */
export function duplexPair(): [MemorySocket, MemorySocket] {
  const client = new MemorySocket('127.0.0.1', 3306);
  const server = new MemorySocket('127.0.0.1', 50000);
  client.peer = server;
  server.peer = client;
  return [client, server];
}
