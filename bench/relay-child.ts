// The floor any Node proxy is held to: a TCP relay that pipes bytes both ways, nothing else.
import { connect, createServer } from 'node:net';
import { pipeBothWays } from './pipe.ts';

const [upstreamHost = '127.0.0.1', upstreamPort = '3306'] = process.argv.slice(2);
const server = createServer({ noDelay: true }, (client) => {
  pipeBothWays(client, connect({ host: upstreamHost, port: Number(upstreamPort), noDelay: true }));
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`ready ${typeof address === 'object' && address !== null ? address.port : 0}\n`);
});
process.on('SIGTERM', () => process.exit(0));
