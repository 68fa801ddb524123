/** Closed-loop load: each connection sends its next query when the last one answered. */
import { connect as tlsConnect } from 'node:tls';
import mysql from 'mysql2/promise';
import { cpuMicros, ioSyscalls, type Pids } from './cpu.ts';

export interface ClientPems {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
}

/**
 * TLS 1.3 from the first byte with a client certificate, as an Istio sidecar originates it
 * and as TLS-terminating L4 proxies take it: mysql2 speaks the protocol over the TLS stream
 * (no STARTTLS, no `ssl` option).
 */
export function firstByteTls(options: mysql.ConnectionOptions, pems: ClientPems, tls: { readonly resume?: boolean } = {}): mysql.ConnectionOptions {
  const { host = '127.0.0.1', port = 3306 } = options;
  // With `resume`, each connection offers the ticket the last one was given (TLS 1.3 resumption).
  let ticket: Buffer | undefined;
  const counts = { handshakes: 0, resumed: 0 };
  const result: mysql.ConnectionOptions = {
    ...options,
    ssl: undefined,
    stream: () => {
      const socket = tlsConnect({ host, port, ...pems, servername: 'localhost', minVersion: 'TLSv1.3', ...(tls.resume === true && ticket !== undefined ? { session: ticket } : {}) });
      if (tls.resume === true) socket.on('session', (session: Buffer) => (ticket = session));
      socket.once('secureConnect', () => {
        counts.handshakes++;
        if (socket.isSessionReused()) counts.resumed++;
      });
      return socket;
    },
  };
  handshakeCounts.set(result, counts);
  return result;
}

const handshakeCounts = new WeakMap<mysql.ConnectionOptions, { handshakes: number; resumed: number }>();

/** How many TLS handshakes connections made with these options did, and how many resumed a session. */
export function tlsHandshakes(options: mysql.ConnectionOptions): { handshakes: number; resumed: number } | null {
  return handshakeCounts.get(options) ?? null;
}

export type Mode = 'text' | 'prepared';

export interface LoadResult {
  readonly qps: number;
  /** CPU microseconds per query spent by each watched process during the measurement. */
  readonly cpuUsPerQuery: Readonly<Record<string, number>>;
  /** Read and write system calls per query made by each watched process. */
  readonly syscallsPerQuery: Readonly<Record<string, number>>;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly queries: number;
}

export async function pointSelects(
  options: mysql.ConnectionOptions,
  connections: number,
  mode: Mode,
  seconds: number,
  rows: number,
  watch: Readonly<Record<string, Pids>> = {},
): Promise<LoadResult> {
  const conns = await Promise.all(Array.from({ length: connections }, () => mysql.createConnection(options)));
  try {
    const run = async (durationMs: number, latencies: number[] | null) => {
      const end = performance.now() + durationMs;
      await Promise.all(
        conns.map(async (conn, c) => {
          let i = c * 7919;
          while (performance.now() < end) {
            const id = (i++ % rows) + 1;
            const start = performance.now();
            if (mode === 'text') await conn.query(`SELECT id, name, qty FROM items WHERE id = ${id}`);
            else await conn.execute('SELECT id, name, qty FROM items WHERE id = ?', [id]);
            latencies?.push((performance.now() - start) * 1000);
          }
        }),
      );
    };
    await run(500, null); // warm-up: JIT, prepared statement caches, TLS buffers
    const latencies: number[] = [];
    const cpuBefore = Object.fromEntries(Object.entries(watch).map(([name, pid]) => [name, cpuMicros(pid)]));
    const syscallsBefore = Object.fromEntries(Object.entries(watch).map(([name, pid]) => [name, ioSyscalls(pid)]));
    const started = performance.now();
    await run(seconds * 1000, latencies);
    const elapsed = (performance.now() - started) / 1000;
    const cpuUsPerQuery = Object.fromEntries(
      Object.entries(watch).map(([name, pid]) => [name, Math.round((cpuMicros(pid) - cpuBefore[name]!) / latencies.length)]),
    );
    const syscallsPerQuery = Object.fromEntries(
      Object.entries(watch).map(([name, pid]) => [name, Math.round(((ioSyscalls(pid) - syscallsBefore[name]!) / latencies.length) * 100) / 100]),
    );
    latencies.sort((a, b) => a - b);
    return {
      cpuUsPerQuery,
      syscallsPerQuery,
      qps: latencies.length / elapsed,
      p50Us: percentile(latencies, 0.5),
      p99Us: percentile(latencies, 0.99),
      queries: latencies.length,
    };
  } finally {
    await Promise.all(conns.map((c) => c.end()));
  }
}

/** Time from TCP connect (and TLS handshake) to the first result, `count` times in a row. */
export async function connectLatency(options: mysql.ConnectionOptions, count: number): Promise<{ p50Us: number; p99Us: number }> {
  const samples: number[] = [];
  for (let i = 0; i < count + 10; i++) {
    const start = performance.now();
    const conn = await mysql.createConnection(options);
    await conn.query('SELECT 1');
    const took = (performance.now() - start) * 1000;
    await conn.end();
    if (i >= 10) samples.push(took);
  }
  samples.sort((a, b) => a - b);
  return { p50Us: percentile(samples, 0.5), p99Us: percentile(samples, 0.99) };
}

export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
}
