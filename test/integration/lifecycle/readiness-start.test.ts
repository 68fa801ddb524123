/**
 * /readyz while a pod starts: `meshgate serve --wait-for-upstream` waits for a MariaDB that is
 * not there yet with its probe port already answering 503 ("starting"), so Kubernetes sends no
 * connection to a replica whose listener is not open; once MariaDB answers, the listener
 * opens and /readyz turns 200.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { cleanup } from '../../helpers/cleanup.ts';
import { MARIADB, STANDARD_WORKLOADS, startHarness, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { killAll, startServe } from '../../helpers/serve-process.ts';
import { serviceMissing } from '../../helpers/services.ts';
import { startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.ts';

const missing = await serviceMissing('mariadb');

describe('readiness while a pod starts (meshgate serve as a process)', { skip: missing, timeout: 120_000 }, () => {
  let h: Harness;
  let mariadb: TcpProxy | null = null;
  before(async () => {
    h = await startHarness({ name: 'readystart', workloads: STANDARD_WORKLOADS });
  });
  after(() => cleanup(killAll, () => mariadb?.close(), () => h?.stop()));

  it('answers 503 "starting" while it waits for MariaDB, then 200 once its listener is open', async () => {
    mariadb = await startTcpProxy(MARIADB);
    await mariadb.stop();
    const metricsPort = await freePort();
    const roles: Record<string, unknown> = {};
    for (const account of h.provisioned.accounts.values()) roles[account.role] = { user: account.user, password: { file: join(h.dir, 'secrets', account.role) } };
    const config = join(h.dir, 'starting.yaml');
    await writeFile(
      config,
      stringify({
        listener: { host: '127.0.0.1', port: 0, tls: { cert: 'server/server.crt', key: 'server/server.key' } },
        trust: { bundles: ['ca/bundle.pem'], trustDomains: [TRUST_DOMAIN] },
        upstream: { host: '127.0.0.1', port: mariadb.port, roles },
        policy: { dir: 'policy' },
        audit: { file: 'starting-audit.jsonl' },
        metrics: { listen: `127.0.0.1:${metricsPort}` },
      }),
    );
    const starting = startServe(config, {}, { args: ['--wait-for-upstream', '60s'] });
    let answer: { status: number; body: Record<string, unknown> } | null = null;
    for (let i = 0; i < 300 && answer === null; i++) {
      answer = await getJson(metricsPort, '/readyz').catch(() => null);
      if (answer === null) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(answer !== null, 'the probe port answers while meshgate waits');
    assert.equal(answer.status, 503);
    assert.match(String((answer.body['notReady'] as Record<string, string>)['lifecycle']), /^meshgate is starting/);
    assert.equal((await getJson(metricsPort, '/healthz')).status, 200, 'alive meanwhile: the kubelet must not restart it');
    await mariadb.start();
    const proc = await starting;
    assert.deepEqual(await proc.readyz(), { status: 200, body: { ready: true } });
    proc.child.kill('SIGTERM');
    assert.equal((await proc.exited).code, 0, proc.stderr());
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function getJson(port: number, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
