/**
 * A Firestore-only meshgate needs no MariaDB anywhere. Its config has neither `listener` nor
 * `upstream`, only the Firestore engine runs, and from the emulator's start to meshgate's
 * stop this process opens no connection to MariaDB: every TCP connection it makes goes to
 * the emulator or to meshgate's own Firestore port (the SDK clients here). Then `meshgate
 * serve` as a real process with such a config file. Google's official emulator upstream.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { Firestore } from '@google-cloud/firestore';
import { stringify } from 'yaml';
import { verifyAuditFile } from '../../../src/audit/verify.ts';
import type { MeshgateConfigInput } from '../../../src/config/schema.ts';
import { meshgateClientSettings } from '../../../src/demo/firestore-sdk.ts';
import { FIRESTORE_POLICY, FIRESTORE_SKIP, FIRESTORE_WORKLOADS, FS_METHOD, gaxGrpc, startFirestoreFixture, type FirestoreFixture } from '../../helpers/firestore.ts';
import { TRUST_DOMAIN } from '../../helpers/bare-harness.ts';
import { MARIADB_TARGET } from '../../helpers/services.ts';

const PROJECT = 'mg-it-firestore-only';
const MAIN = new URL('../../../src/cli/main.ts', import.meta.url).pathname;

/**
 * Where this process opens TCP connections, as `host:port` (or a socket path). net.connect,
 * tls.connect and HTTP/2 all end in Socket.prototype.connect, so mysql2, grpc-js and
 * meshgate's own upstream connections are all seen.
 */
function recordConnections(): { readonly targets: string[]; stop(): void } {
  const targets: string[] = [];
  const original = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    targets.push(targetOf(args));
    return (original as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof original;
  return { targets, stop: () => void (net.Socket.prototype.connect = original) };
}

function targetOf(args: unknown[]): string {
  // net.connect hands over its normalized [options, callback]; a direct call gives options or (port, host).
  const first: unknown = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (typeof first === 'number' || typeof first === 'string') return `${typeof args[1] === 'string' ? args[1] : 'localhost'}:${first}`;
  const options = (first ?? {}) as { host?: string; port?: number | string; path?: string };
  return options.path ?? `${options.host ?? 'localhost'}:${options.port}`;
}

describe('Firestore with no MariaDB anywhere (official emulator)', { skip: FIRESTORE_SKIP, timeout: 120_000 }, () => {
  let fx: FirestoreFixture | undefined;
  let stopped = false;
  let input: MeshgateConfigInput | undefined;
  /** The port of the `serve` process below, which the SDK client here connects to. */
  let servePort = 0;
  const connections = recordConnections();

  before(async () => {
    fx = await startFirestoreFixture({
      name: 'fsonly',
      project: PROJECT,
      workloads: { orders: FIRESTORE_WORKLOADS.orders },
      policy: FIRESTORE_POLICY,
      config: (config) => {
        input = config;
      },
    });
  });
  after(async () => {
    try {
      if (!stopped) await fx?.stop();
    } finally {
      connections.stop();
    }
  });

  it('runs the Firestore engine alone, from a config without listener or upstream', () => {
    assert.ok(input !== undefined && fx !== undefined);
    assert.equal(input.listener, undefined);
    assert.equal(input.upstream, undefined);
    const meshgate = fx.harness.meshgate;
    assert.deepEqual(Object.keys(meshgate.engines), ['firestore']);
    assert.deepEqual(
      meshgate.endpoints.map((e) => [e.engine, e.protocol, e.port]),
      [['firestore', 'grpc', fx.port]],
    );
    assert.equal(meshgate.address, null);
    assert.equal(meshgate.credentials, null);
  });

  it('an SDK set and get pass through meshgate and are audited', async () => {
    assert.ok(fx !== undefined);
    const mark = await fx.mark();
    const orders = fx.client('orders');
    await orders.doc('orders/o1').set({ total: 42 });
    assert.deepEqual((await orders.doc('orders/o1').get()).data(), { total: 42 });
    assert.deepEqual((await fx.direct.doc('orders/o1').get()).data(), { total: 42 }, 'the emulator holds the write');
    const events = await fx.rpcSince(mark, 2);
    assert.deepEqual(
      events.map((e) => [e.method, e.decision, e.identity?.spiffeId]),
      [
        [FS_METHOD('Commit'), 'allow', FIRESTORE_WORKLOADS.orders],
        [FS_METHOD('BatchGetDocuments'), 'allow', FIRESTORE_WORKLOADS.orders],
      ],
    );
  });

  it('`meshgate serve` with a Firestore-only config file: serves, then stops cleanly with the audit flushed', async () => {
    assert.ok(fx !== undefined);
    const dir = fx.harness.dir;
    const config = join(dir, 'firestore-only.yaml');
    const auditFile = join(dir, 'serve-audit.jsonl');
    await writeFile(
      config,
      stringify({
        tls: { cert: 'server/server.crt', key: 'server/server.key' },
        trust: { bundles: ['ca/bundle.pem'], trustDomains: [TRUST_DOMAIN] },
        policy: { dir: 'policy' },
        audit: { file: auditFile },
        firestore: { port: 0, project: PROJECT, upstream: { emulator: `${fx.emulator.host}:${fx.emulator.port}` } },
      }),
    );
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let port = 0;
    // meshgate's log is JSON lines on stdout, the line that says where it listens among them.
    let started: Record<string, unknown> | undefined;
    for await (const line of createInterface({ input: child.stdout })) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      const match = /^meshgate: listening on 127\.0\.0\.1:(\d+) \(firestore\)$/.exec(String(entry['message']));
      if (match) {
        port = Number(match[1]);
        servePort = port;
        started = entry;
        break;
      }
    }
    child.stdout.resume();
    try {
      assert.ok(port > 0, `meshgate did not start: ${stderr}`);
      const ssl = fx.harness.ssl('orders');
      const db = new Firestore({ projectId: PROJECT, ...meshgateClientSettings(gaxGrpc, { host: '127.0.0.1', port }, ssl) });
      try {
        assert.deepEqual((await db.doc('orders/o1').get()).data(), { total: 42 });
      } finally {
        await db.terminate();
      }
      assert.equal(started?.['level'], 'info');
      assert.deepEqual(started?.['engines'], ['firestore'], stderr);
      assert.equal(started?.['upstream'], undefined, 'no MariaDB in the start line');
    } finally {
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number];
      clearTimeout(killer);
      assert.equal(code, 0, stderr);
    }
    assert.equal((await verifyAuditFile(auditFile)).ok, true);
    assert.match(await readFile(auditFile, 'utf8'), /"type":"rpc"/);
  });

  it('opened no connection to MariaDB from start to stop: only to the emulator and to meshgate', async () => {
    assert.ok(fx !== undefined);
    const allowed = new Set([`${fx.emulator.host}:${fx.emulator.port}`, `127.0.0.1:${fx.port}`, `127.0.0.1:${servePort}`]);
    await fx.stop();
    stopped = true;
    const targets = [...new Set(connections.targets.map((t) => t.replace(/^localhost:/, '127.0.0.1:')))];
    assert.ok(targets.length >= 2, `the connections were seen: ${targets.join(', ')}`);
    const mariadb = targets.filter((t) => t.endsWith(`:${MARIADB_TARGET.port}`) || t.endsWith(':3306') || t.includes('mysql'));
    assert.deepEqual(mariadb, [], 'no connection to MariaDB');
    const unexpected = targets.filter((t) => !allowed.has(t));
    assert.deepEqual(unexpected, [], `every connection went to the emulator or to a meshgate port: ${targets.join(', ')}`);
  });
});
