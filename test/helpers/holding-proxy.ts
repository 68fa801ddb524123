/**
 * A TCP forwarder that can hold back what the server says: `hold()` keeps every byte from the
 * server to the client until `release()`, while the client's bytes still reach the server. Put
 * between meshgate and its upstream, it makes "the upstream did the work, its answer has not
 * arrived yet" a state a test can stand in, for as long as it likes.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface HoldingProxy {
  readonly port: number;
  hold(): void;
  /** Sends everything held, in order, and stops holding. */
  release(): void;
  close(): Promise<void>;
}

export async function startHoldingProxy(target: { readonly host: string; readonly port: number }): Promise<HoldingProxy> {
  const sockets = new Set<Socket>();
  let holding = false;
  const held: { readonly to: Socket; readonly chunk: Buffer }[] = [];
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => {
      if (holding) held.push({ to: client, chunk });
      else client.write(chunk);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => {
      if (!holding) client.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const { to, chunk } of held.splice(0)) if (!to.destroyed) to.write(chunk);
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
