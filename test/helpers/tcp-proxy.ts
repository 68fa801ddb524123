/**
 * A TCP forwarder a test controls, put in front of MariaDB or PostgreSQL to make the server
 * "go away" and come back on the same address: `stop()` stops listening (new connections
 * are refused) and cuts every forwarded connection; `start()` listens on the same port again.
 * `rejectNext(n)` accepts the next n connections and closes them at once, like a server
 * that is restarting. `cutAfter(marker)` lets the next client message containing `marker`
 * through, swallows the server's answer and then stops: the server did the work, the client
 * never heard back (a crash or network cut at the worst moment). `openings` keeps what each
 * client said first (its login, for a MySQL client), to see what reached the server; with
 * `keepMysqlMessage`, `kept` holds every later MySQL message the predicate picks, too.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { PacketFramer, type Frame } from '../../src/engines/mysql/codec/framer.ts';

export interface TcpProxy {
  readonly port: number;
  /** Connections accepted so far (forwarded or rejected). */
  readonly accepted: number;
  /** Connections closed on arrival because of rejectNext. */
  readonly rejected: number;
  readonly listening: boolean;
  /** The first bytes (up to OPENING_BYTES) each forwarded connection's client sent, in accept order. */
  readonly openings: readonly Buffer[];
  /** Per forwarded connection, in accept order: the client's MySQL messages `keepMysqlMessage` picked. */
  readonly kept: readonly (readonly Frame[])[];
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** Stops listening and destroys every open forwarded connection. */
  stop(): Promise<void>;
  rejectNext(count: number): void;
  /** Resolves once a client message containing `marker` went through and the proxy stopped right after the server answered it. */
  cutAfter(marker: string): Promise<void>;
  /** stop(), for good. */
  close(): Promise<void>;
}

/** Enough for a MySQL login with its connection attributes; the rest is not kept. */
export const OPENING_BYTES = 64 * 1024;

export interface TcpProxyOptions {
  readonly host?: string;
  /** Frames what clients send as MySQL packets and keeps the messages this picks (a test's own filter). */
  readonly keepMysqlMessage?: (frame: Frame) => boolean;
}

export async function startTcpProxy(target: { readonly host: string; readonly port: number }, options: TcpProxyOptions = {}): Promise<TcpProxy> {
  const host = options.host ?? '127.0.0.1';
  const kept: Frame[][] = [];
  const sockets = new Set<Socket>();
  let accepted = 0;
  let rejected = 0;
  let toReject = 0;
  const openings: { bytes: Buffer[]; length: number }[] = [];
  let server: Server | null = null;
  let port = 0;
  let cut: { readonly marker: Buffer; readonly done: () => void; armed: boolean } | null = null;

  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const onConnection = (client: Socket) => {
    accepted++;
    track(client);
    if (toReject > 0) {
      toReject--;
      rejected++;
      client.destroy();
      return;
    }
    const upstream = connect({ host: target.host, port: target.port, noDelay: true });
    track(upstream);
    client.setNoDelay(true);
    let cutting = false;
    const opening = { bytes: [] as Buffer[], length: 0 };
    openings.push(opening);
    const keep = options.keepMysqlMessage;
    const framer = keep === undefined ? null : new PacketFramer(1 << 30);
    const keptHere: Frame[] = [];
    kept.push(keptHere);
    client.on('data', (chunk: Buffer) => {
      if (framer !== null) for (const frame of framer.push(chunk)) if (keep!(frame)) keptHere.push(frame);
      if (opening.length < OPENING_BYTES) {
        const kept = chunk.subarray(0, OPENING_BYTES - opening.length);
        opening.bytes.push(Buffer.from(kept));
        opening.length += kept.length;
      }
      if (cut !== null && cut.armed && chunk.includes(cut.marker)) {
        cutting = true;
        cut.armed = false;
      }
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (chunk: Buffer) => {
      if (cutting) {
        cutting = false;
        const done = cut?.done;
        cut = null;
        void stop().then(() => done?.());
        return;
      }
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  };
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const next = createServer({ noDelay: true }, onConnection);
      next.once('error', reject);
      next.listen(port, host, () => {
        next.off('error', reject);
        port = (next.address() as AddressInfo).port;
        server = next;
        resolve();
      });
    });
  const stop = async () => {
    const current = server;
    server = null;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    if (current !== null) await new Promise<void>((resolve) => current.close(() => resolve()));
  };
  await listen();
  return {
    get port() {
      return port;
    },
    get accepted() {
      return accepted;
    },
    get rejected() {
      return rejected;
    },
    get listening() {
      return server !== null;
    },
    get openings() {
      return openings.map((opening) => Buffer.concat(opening.bytes));
    },
    get kept() {
      return kept;
    },
    async start() {
      if (server === null) await listen();
    },
    stop,
    rejectNext(count) {
      toReject = count;
    },
    cutAfter(marker) {
      return new Promise<void>((resolve) => {
        cut = { marker: Buffer.from(marker, 'utf8'), done: resolve, armed: true };
      });
    },
    close: stop,
  };
}

/** A port nothing listens on (it was free a moment ago): for tests of "nothing answers". */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
