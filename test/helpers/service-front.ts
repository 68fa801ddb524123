/**
 * What a Kubernetes Service does for a test with several meshgate processes: new TCP
 * connections go round-robin to the backends whose /readyz answered 200 at the last look
 * (every `pollMs`, as the endpoints controller follows readiness); open connections stay
 * where they are. Bytes are piped as they come: TLS stays between client and meshgate.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface Backend {
  readonly port: number;
  readyz(): Promise<{ status: number }>;
}

export interface ServiceFront {
  readonly port: number;
  add(backend: Backend): void;
  /** Backends ready at the last look, by port. */
  readonly ready: readonly number[];
  close(): Promise<void>;
}

export async function startServiceFront(pollMs = 50): Promise<ServiceFront> {
  const backends = new Set<Backend>();
  let ready: number[] = [];
  let next = 0;
  const sockets = new Set<Socket>();
  const look = async () => {
    const answers = await Promise.all([...backends].map(async (b) => ((await b.readyz().catch(() => ({ status: 0 }))).status === 200 ? b.port : null)));
    ready = answers.filter((port): port is number => port !== null);
  };
  let looking = false;
  const poll = setInterval(() => {
    if (looking) return;
    looking = true;
    void look().finally(() => (looking = false));
  }, pollMs);
  const server = createServer((client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    if (ready.length === 0) {
      client.destroy();
      return;
    }
    const port = ready[next++ % ready.length]!;
    const upstream = connect({ host: '127.0.0.1', port });
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    add(backend) {
      backends.add(backend);
    },
    get ready() {
      return ready;
    },
    async close() {
      clearInterval(poll);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
