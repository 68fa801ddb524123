/**
 * The paths bench:mysql measures side by side, and how a scenario's runs become one line:
 * each path run REPEATS times, interleaved (path order rotated each round, so no path always
 * runs first or warm), medians reported, with each process's CPU per query.
 */
import type mysql from 'mysql2/promise';
import type { Pids } from './cpu.ts';
import { pointSelects, type LoadResult, type Mode } from './load.ts';

export interface Path {
  /** direct, relay, tls_relay, haproxy_tls, meshgate_starttls, meshgate_first_byte */
  readonly name: string;
  readonly options: mysql.ConnectionOptions;
  /** The proxy process(es) on this path, whose CPU per query is reported as `proxy`; none direct. */
  readonly proxyPid: Pids | null;
}

export interface ScenarioRuns {
  readonly byPath: ReadonlyMap<string, readonly LoadResult[]>;
}

export async function runInterleaved(
  paths: readonly Path[],
  scenario: { mode: Mode; connections: number; seconds: number; rows: number; repeats: number },
  shared: Readonly<Record<string, number>>,
): Promise<ScenarioRuns> {
  const byPath = new Map<string, LoadResult[]>(paths.map((path) => [path.name, []]));
  for (let round = 0; round < scenario.repeats; round++) {
    for (let i = 0; i < paths.length; i++) {
      const path = paths[(i + round) % paths.length]!;
      const watch = { ...shared, ...(path.proxyPid === null ? {} : { proxy: path.proxyPid }) };
      byPath.get(path.name)!.push(await pointSelects(path.options, scenario.connections, scenario.mode, scenario.seconds, scenario.rows, watch));
    }
  }
  return { byPath };
}

/** The median run by qps (an odd count picks a real run; its latencies and CPU go with it). */
export function medianRun(runs: readonly LoadResult[]): LoadResult {
  const sorted = [...runs].sort((a, b) => a.qps - b.qps);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** One JSON line: the fields earlier versions printed, then the fair peers' figures. */
export function scenarioLine(mode: Mode, connections: number, runs: ScenarioRuns): Record<string, unknown> {
  const median = (name: string): LoadResult | null => {
    const list = runs.byPath.get(name);
    return list === undefined || list.length === 0 ? null : medianRun(list);
  };
  const starttls = median('meshgate_starttls')!;
  const firstByte = median('meshgate_first_byte');
  // The better of meshgate's two TLS modes, as the issue compares it.
  const meshgate = firstByte !== null && firstByte.qps > starttls.qps ? firstByte : starttls;
  const meshgateMode = meshgate === starttls ? 'starttls' : 'first-byte';
  const qps = (result: LoadResult | null) => (result === null ? null : Math.round(result.qps));
  const ratio = (other: LoadResult | null) => (other === null ? null : round(meshgate.qps / other.qps));
  const [direct = null, relay = null, tlsRelay = null, haproxy = null] = ['direct', 'relay', 'tls_relay', 'haproxy_tls'].map(median);
  const cpu = Object.fromEntries([...runs.byPath.keys()].map((name) => [name, median(name)!.cpuUsPerQuery]));
  const syscalls = Object.fromEntries([...runs.byPath.keys()].map((name) => [name, median(name)!.syscallsPerQuery]));
  return {
    scenario: `point_select_${mode}`,
    connections,
    repeats: Math.max(0, ...[...runs.byPath.values()].map((list) => list.length)),
    direct_qps: qps(direct),
    relay_qps: qps(relay),
    tls_relay_qps: qps(tlsRelay),
    haproxy_tls_qps: qps(haproxy),
    meshgate_qps: qps(meshgate),
    meshgate_mode: meshgateMode,
    meshgate_starttls_qps: qps(starttls),
    meshgate_first_byte_qps: qps(firstByte),
    ratio_vs_relay: ratio(relay),
    ratio_vs_direct: ratio(direct),
    ratio_vs_tls_relay: ratio(tlsRelay),
    ratio_vs_haproxy_tls: ratio(haproxy),
    p50_us: meshgate.p50Us,
    p99_us: meshgate.p99Us,
    direct_p50_us: direct?.p50Us ?? null,
    relay_p50_us: relay?.p50Us ?? null,
    tls_relay_p50_us: tlsRelay?.p50Us ?? null,
    haproxy_tls_p50_us: haproxy?.p50Us ?? null,
    // Per path, the CPU µs per query of its proxy process, MariaDB and the load generator.
    cpu_us_per_query: cpu,
    // Per path, read and write system calls per query (/proc/PID/io): fewer means fewer wakeups.
    syscalls_per_query: syscalls,
    ...(runs.byPath.has('meshgate_workers')
      ? { workers_qps: qps(median('meshgate_workers')), workers_vs_tls_relay: tlsRelay === null ? null : round(median('meshgate_workers')!.qps / tlsRelay.qps), workers_vs_starttls: round(median('meshgate_workers')!.qps / starttls.qps) }
      : {}),
    ...(runs.byPath.has('meshgate_baseline')
      ? { baseline_qps: qps(median('meshgate_baseline')), starttls_vs_baseline: round(starttls.qps / median('meshgate_baseline')!.qps) }
      : {}),
    qps_runs: Object.fromEntries([...runs.byPath].map(([name, list]) => [name, list.map((r) => Math.round(r.qps))])),
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
