import type { Duplex } from 'node:stream';

/** Bytes both ways, unread; either side closing or failing closes both. What a relay is. */
export function pipeBothWays(client: Duplex, upstream: Duplex): void {
  client.pipe(upstream).pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
  client.on('close', close);
  upstream.on('close', close);
}
