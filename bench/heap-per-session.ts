/**
 * `npx tsx bench/heap-per-session.ts [SESSIONS]`: what an idle authenticated session keeps
 * alive in meshgate's JS heap, by constructor — the part of bench:mysql's `idle_sessions`
 * figure that meshgate's own code decides (the rest is OpenSSL's and libuv's, outside the
 * heap). meshgate (first-byte mTLS, as deployed) is snapshotted after a warm-up and again with
 * SESSIONS (default 300) sessions open and idle; the difference per session is printed, the
 * largest first, with the heap total per session. (No RSS here: writing a snapshot grows it.)
 */
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { ensureMaxConnections } from './idle.ts';
import { firstByteTls } from './load.ts';
import { startServe } from './serve.ts';
import { benchSetup } from './setup.ts';

const SESSIONS = Number(process.argv[2] ?? 300);

interface HeapSnapshot {
  readonly snapshot: { readonly meta: { readonly node_fields: string[]; readonly node_types: [string[], ...unknown[]] } };
  readonly nodes: number[];
  readonly strings: string[];
}

/** Self size and count per `type:name` (objects by constructor; strings, code, arrays by kind). */
function byConstructor(heap: HeapSnapshot): Map<string, { bytes: number; count: number }> {
  const fields = heap.snapshot.meta.node_fields;
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const types = heap.snapshot.meta.node_types[0];
  const totals = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < heap.nodes.length; i += width) {
    const type = types[heap.nodes[i + typeAt]!]!;
    const name = type === 'object' || type === 'native' || type === 'closure' ? heap.strings[heap.nodes[i + nameAt]!]! : '';
    const key = `${type}:${name}`;
    const entry = totals.get(key) ?? { bytes: 0, count: 0 };
    entry.bytes += heap.nodes[i + sizeAt]!;
    entry.count++;
    totals.set(key, entry);
  }
  return totals;
}

async function snapshot(pid: number, dir: string): Promise<Map<string, { bytes: number; count: number }>> {
  const before = new Set(await readdir(dir));
  process.kill(pid, 'SIGUSR2');
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const made = (await readdir(dir)).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (made === undefined) continue;
    // Written in pieces: parse once it is whole.
    try {
      return byConstructor(JSON.parse(await readFile(join(dir, made), 'utf8')) as HeapSnapshot);
    } catch {
      continue;
    }
  }
}

const setup = await benchSetup({ database: 'mgheap', role: 'reader', privileges: ['SELECT'], setupSql: [] });
const restore = await ensureMaxConnections(SESSIONS + 100, 'bench:heap', `${SESSIONS} idle sessions`);
const conns: mysql.Connection[] = [];
let stopMeshgate = async () => undefined as void;
try {
  const config = await setup.writeMeshgateConfig('first-byte', { mode: 'first-byte' });
  const meshgate = await startServe(config, ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${setup.dir}`]);
  // Its upstream connections must be gone before max_connections goes back and the account is dropped.
  stopMeshgate = async () => {
    if (meshgate.child.exitCode !== null) return;
    const exited = once(meshgate.child, 'exit');
    meshgate.child.kill('SIGTERM');
    await exited;
  };
  const options = firstByteTls({ ...setup.base, port: meshgate.port }, setup.pems);
  const open = async (count: number) => {
    for (let i = 0; i < count; i += 50) {
      conns.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(50, count - i) }, async () => {
            const conn = await mysql.createConnection(options);
            await conn.query('SELECT 1');
            return conn;
          }),
        )),
      );
    }
  };
  await open(10);
  await Promise.all(conns.splice(0).map((c) => c.end()));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const base = await snapshot(meshgate.child.pid!, setup.dir);
  await open(SESSIONS);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const loaded = await snapshot(meshgate.child.pid!, setup.dir);
  const rows = [...loaded].map(([key, { bytes, count }]) => {
    const was = base.get(key) ?? { bytes: 0, count: 0 };
    return { key, bytesPerSession: (bytes - was.bytes) / SESSIONS, countPerSession: (count - was.count) / SESSIONS };
  });
  rows.sort((a, b) => b.bytesPerSession - a.bytesPerSession);
  const heapPerSession = rows.reduce((sum, row) => sum + row.bytesPerSession, 0);
  console.log(JSON.stringify({ sessions: SESSIONS, heap_kib_per_session: Math.round((heapPerSession / 1024) * 10) / 10 }));
  for (const row of rows.slice(0, 30)) console.log(`${row.bytesPerSession.toFixed(0).padStart(8)} B  ${row.countPerSession.toFixed(1).padStart(6)}×  ${row.key}`);
} finally {
  await Promise.all(conns.map((c) => c.end().catch(() => c.destroy())));
  await stopMeshgate();
  await setup.drop();
  await restore();
}
