/**
 * `tsx bench/pool-reuse.ts`: what an upstream connection costs meshgate, fresh or pooled, with
 * nothing else in the way (no client, no TLS, no policy): the part of a session's start that
 * the pool decides.
 *
 *   login     connectUpstream: TCP connect, greeting, native-password login, OK
 *   renew     UpstreamPool.take of a parked connection: one pipelined SELECT of the globals a
 *             login would differ in, COM_CHANGE_USER with the client's database, character set
 *             and attributes, the auth switch, and the SET a client asking for IGNORE_SPACE needs
 *             (mysql2 and the mariadb connector do)
 *   park      UpstreamPool.give until the connection is idle again (off the session's path:
 *             after the client has gone)
 *   reset_v1  what the pool did before a reuse became a renewal, for comparison: at give,
 *             COM_RESET_CONNECTION, SET ROLE, COM_INIT_DB, one after the other; at take, nothing
 *
 * Rounds alternate login and renew so both see the same load on a shared machine. One JSON line
 * per figure, then the ratio renew/login. Options (env): MESHGATE_BENCH_ROUNDS (default 500);
 * MESHGATE_BENCH_ONE_WAY_MS (default 0): when set, meshgate's side reaches MariaDB through an
 * in-process forwarder that delays every chunk by this much each way, and a new connection by
 * one round trip (the TCP handshake), as a network between pods would.
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { Capability, RELAYABLE_CAPABILITIES } from '../src/engines/mysql/codec/constants.ts';
import { encodeMessage, PacketFramer } from '../src/engines/mysql/codec/framer.ts';
import { provision } from '../src/demo/provision.ts';
import { quit, UpstreamPool } from '../src/engines/mysql/pool.ts';
import { connectUpstream, type UpstreamConnection, type UpstreamLogin } from '../src/engines/mysql/upstream.ts';

const MARIADB = { host: '127.0.0.1', port: 3306, user: 'root', password: '' };
const ROUNDS = Number(process.env.MESHGATE_BENCH_ROUNDS ?? 500);
const ONE_WAY_MS = Number(process.env.MESHGATE_BENCH_ONE_WAY_MS ?? 0);
const WARMUP = 20;
const RUN = randomBytes(3).toString('hex');
const DATABASE = `mgbench_pool_${RUN}`;
const ROLE = `benchp_${RUN}_reader`;

function figures(samples: readonly number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return { count: sorted.length, p50_ms: round(at(0.5)), p99_ms: round(at(0.99)), mean_ms: round(sorted.reduce((s, x) => s + x, 0) / Math.max(1, sorted.length)) };
}

/** A forwarder that delays each chunk by `oneWayMs`, keeping order, and each new connection by a round trip. */
async function delayingForwarder(target: { host: string; port: number }, oneWayMs: number): Promise<{ port: number; close(): void }> {
  const sockets = new Set<Socket>();
  const pipe = (from: Socket, to: Socket, extraFirstMs: number) => {
    let extra = extraFirstMs;
    from.on('data', (chunk) => {
      const delay = oneWayMs + extra;
      extra = 0;
      setTimeout(() => to.write(chunk), delay);
    });
    from.on('close', () => setTimeout(() => to.destroy(), oneWayMs));
    from.on('error', () => to.destroy());
  };
  const server = createServer({ noDelay: true }, (client) => {
    const upstream = connect({ ...target, noDelay: true });
    sockets.add(client).add(upstream);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
    pipe(client, upstream, 0);
    // The greeting is the first thing a client hears: after SYN, SYN-ACK (one round trip) and its own trip.
    pipe(upstream, client, 2 * oneWayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/** The former give-time reset: three exchanges in a row on the connection. */
async function resetV1(connection: UpstreamConnection, database: string): Promise<void> {
  const framer = new PacketFramer(64 * 1024);
  const socket = connection.socket;
  const ask = (payload: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        if (framer.push(chunk).length === 0) return;
        socket.off('data', onData);
        socket.off('error', reject);
        resolve();
      };
      socket.on('data', onData);
      socket.on('error', reject);
      socket.write(encodeMessage(payload, 0));
    });
  socket.resume();
  await ask(Buffer.from([0x1f]));
  await ask(Buffer.from(`\x03SET ROLE \`${ROLE}\``, 'latin1'));
  await ask(Buffer.concat([Buffer.from([0x02]), Buffer.from(database)]));
  socket.pause();
}

const provisioned = await provision(MARIADB, DATABASE, { [ROLE]: { privileges: ['SELECT'] } });
const pool = new UpstreamPool({ maxIdlePerKey: 4, idleTimeoutMs: 600_000, isLeaseUsable: () => true });
const forwarder = ONE_WAY_MS > 0 ? await delayingForwarder(MARIADB, ONE_WAY_MS) : null;
try {
  const account = [...provisioned.accounts.values()][0]!;
  const target = { host: MARIADB.host, port: forwarder?.port ?? MARIADB.port, connectTimeoutMs: 5000 };
  const login: UpstreamLogin = {
    user: account.user,
    password: account.password,
    database: DATABASE,
    capabilities: (RELAYABLE_CAPABILITIES & ~(Capability.SSL | Capability.LOCAL_FILES | Capability.NO_SCHEMA)) >>> 0,
    mariadbCapabilities: 0,
    charset: 224,
    maxPacketSize: 16 * 1024 * 1024,
    attributes: new Map([
      ['_client_name', 'bench'],
      ['meshgate_identity', 'spiffe://bench/ns/b/sa/b'],
    ]),
  };
  const samples = { login: [] as number[], renew: [] as number[], park: [] as number[], reset_v1: [] as number[] };
  const parked = async (connection: UpstreamConnection) => {
    const before = pool.stats.returned;
    const started = performance.now();
    pool.give(login, connection, null);
    while (pool.stats.returned === before) await new Promise((r) => setImmediate(r));
    return performance.now() - started;
  };
  let pooled = await connectUpstream(target, login);
  await parked(pooled);
  const v1 = await connectUpstream(target, login);
  for (let i = 0; i < WARMUP + ROUNDS; i++) {
    const keep = i >= WARMUP;
    let started = performance.now();
    const fresh = await connectUpstream(target, login);
    if (keep) samples.login.push(performance.now() - started);
    quit(fresh);

    started = performance.now();
    const taken = await pool.take(login);
    if (taken === null) throw new Error('the parked connection was not reused');
    if (keep) samples.renew.push(performance.now() - started);
    pooled = taken;
    const park = await parked(pooled);
    if (keep) samples.park.push(park);

    started = performance.now();
    await resetV1(v1, DATABASE);
    if (keep) samples.reset_v1.push(performance.now() - started);
  }
  quit(v1);
  for (const [name, values] of Object.entries(samples)) process.stdout.write(`${JSON.stringify({ scenario: name, ...figures(values) })}\n`);
  const login50 = figures(samples.login).p50_ms;
  process.stdout.write(
    `${JSON.stringify({
      scenario: 'ratios',
      one_way_ms: ONE_WAY_MS,
      renew_over_login_p50: Math.round((figures(samples.renew).p50_ms / login50) * 1000) / 1000,
      renew_over_login_mean: Math.round((figures(samples.renew).mean_ms / figures(samples.login).mean_ms) * 1000) / 1000,
      pool: pool.stats,
    })}\n`,
  );
} finally {
  pool.close();
  forwarder?.close();
  await provisioned.drop();
}
