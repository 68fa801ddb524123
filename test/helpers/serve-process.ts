/**
 * `meshgate serve` as a real process, as a pod runs it: its JSON log read from stdout, the
 * ports it bound read from its "listening" line, /readyz asked over plain HTTP, signals sent
 * for real. Every process started here is killed by `killAll()` (call it in `after`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { createInterface } from 'node:readline';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const ROOT = new URL('../../', import.meta.url).pathname;

export interface ServeProcess {
  readonly child: ChildProcess;
  /** The MySQL port (the first endpoint of the listening line). */
  readonly port: number;
  /** The plain-HTTP metrics listener's port (metrics.listen), or null. */
  readonly metricsPort: number | null;
  /** The admin API's port (mTLS), or null. */
  readonly adminPort: number | null;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** meshgate's log so far, one object per stdout line. */
  log(): Record<string, unknown>[];
  /** What it wrote to stderr (a failed start's one-line error). */
  stderr(): string;
  /** GET /readyz on the metrics port: status and body. */
  readyz(): Promise<{ status: number; body: Record<string, unknown> }>;
}

const started = new Set<ServeProcess>();

/** `configFile` null: no --config, as a container whose environment names it (MESHGATE_CONFIG). */
export async function startServe(configFile: string | null, env: NodeJS.ProcessEnv = {}, options: { readonly args?: readonly string[]; readonly timeoutMs?: number } = {}): Promise<ServeProcess> {
  const args = [...(configFile === null ? [] : ['--config', configFile]), ...(options.args ?? [])];
  const timeoutMs = options.timeoutMs ?? 60_000;
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const out: string[] = [];
  const err: string[] = [];
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => out.push(chunk));
  child.stderr!.on('data', (chunk: string) => err.push(chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const log = () =>
    out
      .join('')
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  let listening: Record<string, unknown> | null = null;
  for await (const line of createInterface({ input: child.stdout! })) {
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (/^meshgate: listening on /.test(String(entry['message']))) {
      listening = entry;
      break;
    }
  }
  clearTimeout(killer);
  if (listening === null) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`meshgate serve did not start:\n${err.join('')}${out.join('')}`);
  }
  const port = Number(/listening on [^:]+:(\d+)/.exec(String(listening['message']))![1]);
  const metricsPort = typeof listening['metricsPort'] === 'number' ? listening['metricsPort'] : null;
  const adminPort = typeof listening['adminPort'] === 'number' ? listening['adminPort'] : null;
  const proc: ServeProcess = {
    child,
    port,
    metricsPort,
    adminPort,
    exited,
    log,
    stderr: () => err.join(''),
    readyz: () => (metricsPort === null ? Promise.reject(new Error('no metrics.listen in this config')) : getJson(metricsPort, '/readyz')),
  };
  started.add(proc);
  void exited.then(() => started.delete(proc));
  return proc;
}

/** Kills what is still running (after a failed test), and waits for it. */
export async function killAll(): Promise<void> {
  for (const proc of [...started]) {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
}

function getJson(port: number, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
