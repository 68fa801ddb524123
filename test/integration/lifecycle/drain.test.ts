/**
 * SIGTERM as Kubernetes sends it, to `meshgate serve` as a real process: /readyz turns false
 * at once and new connections are refused, open sessions go on (a running statement finishes,
 * new statements run) until shutdown.gracePeriod, then an idle session hears MG_SHUTTING_DOWN
 * (MySQL 1053); this replica's session leases are revoked and their accounts dropped, and the
 * audit holds every statement and session end, its chain intact.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { verifyAuditFile } from '../../../src/audit/verify.ts';
import { openEmbeddedStore } from '../../../src/store/index.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { existingAccounts, RUN_ID, STANDARD_WORKLOADS, startHarness, writeServeConfig, type Harness } from '../../helpers/meshgate.ts';
import { killAll, startServe, type ServeProcess } from '../../helpers/serve-process.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');
const GRACE_MS = 3000;

describe('SIGTERM drains (meshgate serve as a process)', { skip: missing, timeout: 120_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ name: 'drain', workloads: STANDARD_WORKLOADS, credentials: 'dynamic' });
  });
  after(() => cleanup(killAll, () => h?.stop()));

  const writeConfig = async (name: string) => {
    const file = await writeServeConfig(h, name, {
      // One ConfigMap for every replica: each names itself from its pod.
      state: { embedded: { dir: `${name}-state` }, replicaId: '${env:POD_NAME}' },
      policy: { dir: 'policy' },
      audit: { file: `${name}-audit.jsonl` },
      metrics: { listen: '127.0.0.1:0' },
      shutdown: { gracePeriod: `${GRACE_MS / 1000}s` },
    });
    return { file, stateDir: join(h.dir, `${name}-state`), auditFile: join(h.dir, `${name}-audit.jsonl`) };
  };

  const connectTo = (proc: ServeProcess) => mysql.createConnection({ host: '127.0.0.1', port: proc.port, user: 'u', database: h.database, ssl: h.ssl('orders') });

  it('stops taking connections at once, lets open sessions work through the grace period, then ends the idle ones with MG_SHUTTING_DOWN', async () => {
    const { file, stateDir, auditFile } = await writeConfig('grace');
    const replica = `drain-${RUN_ID}-a`;
    const proc = await startServe(file, { POD_NAME: replica });
    assert.deepEqual(await proc.readyz(), { status: 200, body: { ready: true } });
    const idle = await connectTo(proc);
    // mysql2 reports an ERR that answers no command as a fatal error whose code is the errno.
    const idleError = new Promise<{ code?: unknown; message: string }>((resolve) => idle.on('error', resolve));
    const busy = await connectTo(proc);
    await busy.query('CREATE TABLE drained (id INT PRIMARY KEY)');
    await idle.query('SELECT 1');

    const sleeping = busy.query<mysql.RowDataPacket[]>('SELECT SLEEP(1) AS slept');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const signalled = performance.now();
    proc.child.kill('SIGTERM');
    await until(async () => (await proc.readyz()).status === 503, 'readyz turns 503');
    const { body } = await proc.readyz();
    assert.match(String((body['notReady'] as Record<string, string>)['lifecycle']), /shutting down \(SIGTERM\)/);
    assert.equal(await refused(proc.port), true, 'a new connection is refused: the Service sends it to another replica');

    const [slept] = await sleeping;
    assert.equal(slept[0]!['slept'], 0, 'the statement running at SIGTERM finished');
    for (let id = 1; id <= 5; id++) await busy.query('INSERT INTO drained VALUES (?)', [id]);
    await busy.end();

    const error = await idleError;
    const waited = performance.now() - signalled;
    assert.equal(error.code, 1053, error.message);
    assert.match(error.message, /^\[MG_SHUTTING_DOWN\] meshgate is shutting down: .*shutdown\.gracePeriod.*reconnect/);
    assert.ok(waited >= GRACE_MS - 100, `the idle session was ended after the grace period, not before (${Math.round(waited)} ms)`);
    const { code } = await proc.exited;
    assert.equal(code, 0, proc.stderr());

    // This replica's session leases: revoked, accounts gone.
    const store = await openEmbeddedStore(stateDir, { owner: 'drain-test' });
    try {
      const leases = await store.listLeases();
      assert.ok(leases.length > 0);
      assert.deepEqual(
        leases.map((lease) => [lease.owner, lease.purpose, lease.state]),
        leases.map(() => [replica, 'session', 'revoked']),
      );
      assert.deepEqual(await existingAccounts(leases.map((lease) => lease.username)), []);
    } finally {
      await store.close();
    }

    const events = (await readFile(auditFile, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const inserts = events.filter((event) => event['type'] === 'statement' && String(event['statement']).startsWith('INSERT INTO drained'));
    assert.equal(inserts.length, 5, 'every statement of the grace period is audited');
    const ends = events.filter((event) => event['type'] === 'session_end');
    assert.equal(ends.length, 2);
    assert.ok(ends.some((event) => /meshgate shut down/.test(String(event['reason']))), JSON.stringify(ends));
    assert.equal((await verifyAuditFile(auditFile)).ok, true);
    const stopped = proc.log().find((entry) => entry['message'] === 'meshgate stopped');
    assert.deepEqual(stopped?.['endedByShutdown'], { mysql: 1 }, JSON.stringify(stopped));
  });

  it('exits as soon as the last session ends, without waiting out the grace period', async () => {
    const { file } = await writeConfig('prompt');
    const proc = await startServe(file, { POD_NAME: `drain-${RUN_ID}-b` });
    const conn = await connectTo(proc);
    await conn.query('SELECT 1');
    const signalled = performance.now();
    proc.child.kill('SIGTERM');
    await until(async () => (await proc.readyz()).status === 503, 'readyz turns 503');
    await conn.query('SELECT 2');
    await conn.end();
    const { code } = await proc.exited;
    const took = performance.now() - signalled;
    assert.equal(code, 0, proc.stderr());
    assert.ok(took < GRACE_MS, `stopped ${Math.round(took)} ms after SIGTERM, once the session ended`);
    const stopped = proc.log().find((entry) => entry['message'] === 'meshgate stopped');
    assert.deepEqual(stopped?.['endedByShutdown'], {});
  });

  it('signals sent the moment it says it listens are handled, not fatal (SIGHUP reloads, SIGTERM drains)', async () => {
    const { file } = await writeConfig('prompt-signals');
    for (let round = 0; round < 3; round++) {
      const proc = await startServe(file, { POD_NAME: `drain-${RUN_ID}-s${round}` });
      proc.child.kill('SIGHUP');
      proc.child.kill('SIGTERM');
      const { code, signal } = await proc.exited;
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, proc.stderr());
      assert.ok(proc.log().some((entry) => entry['message'] === 'meshgate stopped'));
    }
  });

  it('a second SIGTERM cuts the grace period short', async () => {
    const { file } = await writeConfig('twice');
    const proc = await startServe(file, { POD_NAME: `drain-${RUN_ID}-c` });
    const conn = await connectTo(proc);
    const ended = new Promise<{ code?: unknown }>((resolve) => conn.on('error', resolve));
    await conn.query('SELECT 1');
    const signalled = performance.now();
    proc.child.kill('SIGTERM');
    await until(async () => (await proc.readyz()).status === 503, 'readyz turns 503');
    proc.child.kill('SIGTERM');
    assert.equal((await ended).code, 1053);
    const { code } = await proc.exited;
    assert.equal(code, 0, proc.stderr());
    assert.ok(performance.now() - signalled < GRACE_MS, 'ended before the grace period');
  });
});

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`never: ${what}`);
}

/** True when nothing accepts a TCP connection on the port. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}
