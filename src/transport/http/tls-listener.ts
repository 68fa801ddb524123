/**
 * A TCP listener that terminates TLS itself on each connection it accepts, then hands the
 * handshaken socket on (to an HTTP server's 'connection' event, say).
 */
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';

export interface TlsListenerOptions {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  /**
   * Asked once per connection, so the latest context that loaded (tls-material.ts) serves it,
   * as the MySQL listener does: certificate and bundle changes apply without a restart.
   */
  readonly secureContext: () => SecureContext;
  /** Whether to ask for a client certificate. One that does not verify still connects: the endpoint judges it. */
  readonly requestCert: boolean;
  /** A peer that does not finish the handshake in time is dropped. */
  readonly handshakeTimeoutMs: number;
  readonly onConnection: (tlsSocket: TLSSocket) => void;
}

/** A started server: the port it took, and how to stop it. */
export interface Listening {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Rejects with the listen error itself (EADDRINUSE, ...): each endpoint says what to change.
 * close() destroys every connection still open, handshaken or not.
 */
export async function listenTlsPerConnection(options: TlsListenerOptions): Promise<Listening> {
  const sockets = new Set<Socket>();
  const netServer = createNetServer((raw) => {
    sockets.add(raw);
    raw.once('close', () => sockets.delete(raw));
    raw.on('error', () => raw.destroy());
    raw.setTimeout(options.handshakeTimeoutMs, () => raw.destroy());
    const tlsSocket = new TLSSocket(raw, { isServer: true, secureContext: options.secureContext(), requestCert: options.requestCert, rejectUnauthorized: false });
    tlsSocket.on('error', () => tlsSocket.destroy());
    tlsSocket.once('secure', () => {
      raw.setTimeout(0);
      options.onConnection(tlsSocket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    netServer.once('error', reject);
    netServer.listen(options.port, options.host, () => {
      netServer.off('error', reject);
      resolve();
    });
  });
  return {
    port: (netServer.address() as AddressInfo).port,
    close: async () => {
      const closed = new Promise<void>((resolve) => netServer.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
