// The fair Node peer for an mTLS proxy: TLS 1.3 from the first byte with the client's
// certificate verified (as meshgate's first-byte mode), then the bytes piped to MariaDB
// unread. No identity, policy or audit: what TLS termination alone costs in Node.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createServer } from 'node:tls';
import { pipeBothWays } from './pipe.ts';

const [upstreamHost = '127.0.0.1', upstreamPort = '3306', cert = '', key = '', ca = ''] = process.argv.slice(2);
const server = createServer(
  { cert: readFileSync(cert), key: readFileSync(key), ca: readFileSync(ca), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
  (client) => {
    client.setNoDelay(true);
    pipeBothWays(client, connect({ host: upstreamHost, port: Number(upstreamPort), noDelay: true }));
  },
);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`ready ${typeof address === 'object' && address !== null ? address.port : 0}\n`);
});
process.on('SIGTERM', () => process.exit(0));
