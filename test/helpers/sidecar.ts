/**
 * A stand-in for an Istio client sidecar: the application connects to it in plain TCP, and
 * it originates mutual TLS to the destination with the workload's SVID and Istio's ALPN,
 * piping bytes both ways (what Envoy does for ISTIO_MUTUAL on a TCP port).
 */
import { createServer, type AddressInfo, type Server } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export interface Sidecar {
  readonly port: number;
  /** ALPN protocols the destination selected, one per connection. */
  readonly negotiated: (string | false)[];
  close(): Promise<void>;
}

export async function startSidecar(destinationPort: number, ssl: { cert: Buffer; key: Buffer; ca: Buffer }): Promise<Sidecar> {
  const negotiated: (string | false)[] = [];
  const server: Server = createServer((app) => {
    const upstream = tlsConnect({
      host: '127.0.0.1',
      port: destinationPort,
      servername: 'localhost',
      ...ssl,
      ALPNProtocols: ['istio-peer-exchange', 'istio'],
    });
    upstream.once('secureConnect', () => negotiated.push(upstream.alpnProtocol ?? false));
    app.pipe(upstream).pipe(app);
    const close = () => {
      app.destroy();
      upstream.destroy();
    };
    app.on('error', close);
    upstream.on('error', close);
    app.on('close', close);
    upstream.on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    negotiated,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
