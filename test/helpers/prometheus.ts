/**
 * A real Prometheus server for tests (Debian package `prometheus`): its own config, storage
 * in a temp dir and a free port; queried through its HTTP API. And `promtool check metrics`,
 * Prometheus' own linter of an exposition. A suite whose Prometheus is absent skips, naming
 * the package; `.ci/run` installs it and sets MESHGATE_TEST_REQUIRE=…,clients, and then its
 * absence fails the suite (`prometheus` names it alone).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRequired } from './services.ts';

export const PROMETHEUS = process.env.MESHGATE_TEST_PROMETHEUS ?? '/usr/bin/prometheus';
export const PROMTOOL = process.env.MESHGATE_TEST_PROMTOOL ?? '/usr/bin/promtool';

/** false when both programs run; otherwise the skip reason (or a throw, when required). */
export function prometheusMissing(): string | false {
  for (const program of [PROMETHEUS, PROMTOOL]) {
    const result = spawnSync(program, ['--version'], { stdio: 'ignore', timeout: 20_000 });
    if (result.error === undefined && result.status === 0) continue;
    const reason = `needs ${program} (apt-get install prometheus; or set MESHGATE_TEST_PROMETHEUS and MESHGATE_TEST_PROMTOOL)`;
    if (isRequired('clients') || isRequired('prometheus')) throw new Error(`MESHGATE_TEST_REQUIRE names ${isRequired('prometheus') ? 'prometheus' : 'clients'}, but this suite ${reason}`);
    return reason;
  }
  return false;
}

/** `promtool check metrics` on an exposition: its exit code and what it said (lint problems on stderr). */
export function promtoolCheck(text: string): { readonly code: number; readonly output: string } {
  const result = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { code: result.status ?? -1, output: `${result.stdout}${result.stderr}`.trim() };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Sample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface PrometheusServer {
  readonly url: string;
  /** An instant query; the vector's samples. */
  query(expr: string): Promise<Sample[]>;
  /** Until the scrape target is up (health "up"), or throws with what Prometheus says of it. */
  waitForTarget(timeoutMs?: number): Promise<void>;
  /** The trace ids of the exemplars of the series `selector` selects (exemplar storage is on). */
  exemplarTraceIds(selector: string): Promise<string[]>;
  /** Until `expr` has a sample for which `ok` holds. */
  waitFor(expr: string, ok: (samples: Sample[]) => boolean, timeoutMs?: number): Promise<Sample[]>;
  stop(): Promise<void>;
}

/** Prometheus scraping `target` (host:port, path /metrics) every `intervalSeconds`. */
export async function startPrometheus(target: string, intervalSeconds = 1): Promise<PrometheusServer> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-prometheus-'));
  const config = [
    'global:',
    `  scrape_interval: ${intervalSeconds}s`,
    `  scrape_timeout: ${intervalSeconds}s`,
    'scrape_configs:',
    '  - job_name: meshgate',
    `    static_configs: [{ targets: ['${target}'] }]`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'prometheus.yml'), config);
  let child: ChildProcess | null = null;
  let output = '';
  const stop = async () => {
    if (child !== null && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child!.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    child = spawn(
      PROMETHEUS,
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', '--enable-feature=exemplar-storage'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const keep = (chunk: Buffer) => void (output = (output + chunk.toString()).slice(-8000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const api = async (path: string): Promise<unknown> => {
      const response = await fetch(`${url}${path}`);
      const body = (await response.json()) as { status: string; data: unknown; error?: string };
      if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${body.error ?? response.status}`);
      return body.data;
    };
    const until = async <T>(what: string, attempt: () => Promise<T | null>, timeoutMs: number): Promise<T> => {
      const deadline = Date.now() + timeoutMs;
      let last: unknown = null;
      for (;;) {
        if (child!.exitCode !== null) throw new Error(`Prometheus exited (${child!.exitCode}) while waiting for ${what}:\n${output}`);
        try {
          const result = await attempt();
          if (result !== null) return result;
        } catch (error) {
          last = error;
        }
        if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}${last === null ? '' : ` (${String(last)})`}\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    };
    await until('Prometheus to be ready', async () => ((await fetch(`${url}/-/ready`)).ok ? true : null), 60_000);
    const query = async (expr: string): Promise<Sample[]> => {
      const data = (await api(`/api/v1/query?query=${encodeURIComponent(expr)}`)) as { result: { metric: Record<string, string>; value: [number, string] }[] };
      return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    };
    return {
      url,
      query,
      async exemplarTraceIds(selector) {
        const now = Date.now() / 1000;
        const data = (await api(`/api/v1/query_exemplars?query=${encodeURIComponent(selector)}&start=${now - 3600}&end=${now + 60}`)) as { exemplars: { labels: Record<string, string> }[] }[];
        return data.flatMap((series) => series.exemplars.map((e) => e.labels['trace_id'] ?? ''));
      },
      async waitForTarget(timeoutMs = 30_000) {
        let health = '';
        await until(`the target ${target} to be up (last: ${health})`, async () => {
          const data = (await api('/api/v1/targets')) as { activeTargets: { health: string; lastError: string }[] };
          const found = data.activeTargets[0];
          health = found === undefined ? 'no target' : `${found.health} ${found.lastError}`;
          return found?.health === 'up' ? true : null;
        }, timeoutMs);
      },
      waitFor: (expr, ok, timeoutMs = 30_000) =>
        until(`${expr} to hold`, async () => {
          const samples = await query(expr);
          return ok(samples) ? samples : null;
        }, timeoutMs),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
