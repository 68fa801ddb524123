// meshgate as deployed: its own process, mTLS listener, policy, audit to a file.
import { loadConfigFile } from '../src/config/load.ts';
import { jsonLogger } from '../src/log.ts';
import { startMeshgate } from '../src/server.ts';

const config = loadConfigFile(process.argv[2]!);
const running = await startMeshgate({ ...config, listener: { ...config.listener!, port: 0 } }, jsonLogger());
if (running.metricsPort !== null) process.stdout.write(`metrics ${running.metricsPort}\n`);
process.stdout.write(`ready ${running.address!.port}\n`);
process.on('SIGTERM', () => {
  void running.close().then(() => process.exit(0));
});
