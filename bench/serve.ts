/**
 * meshgate for a benchmark, as deployed: `node bin/meshgate.js serve` on the compiled dist/
 * (built here first), not the sources through tsx, whose transform wraps every function it
 * creates at run time (esbuild's keepNames) and so costs the hot path what production never
 * pays. MESHGATE_BENCH_SOURCE=1 runs the sources instead (no build step).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = join(import.meta.dirname, '..');
const built = new Set<string>();

export interface ServingMeshgate {
  readonly child: ChildProcess;
  readonly port: number;
  readonly metricsPort: number | null;
  /** The process and, with --workers, its workers: whose CPU and memory are meshgate's. */
  readonly pids: readonly number[];
}

/** Compiles a checkout's dist/ once per benchmark run (tsc, about 15 s), unless the sources are to run. */
function ensureBuilt(root: string): void {
  if (built.has(root) || process.env.MESHGATE_BENCH_SOURCE === '1') return;
  process.stderr.write(`bench: building ${join(root, 'dist')} (tsc) to run meshgate as deployed\n`);
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  built.add(root);
}

/**
 * Starts `meshgate serve --config configPath` and waits for its listening line. `root`: the
 * checkout to run, this one by default (another one is a baseline to compare with, e.g. a
 * worktree of the last release, measured in the same run).
 */
export async function startServe(configPath: string, nodeFlags: readonly string[] = [], root: string = ROOT, args: readonly string[] = []): Promise<ServingMeshgate> {
  ensureBuilt(root);
  const entry = process.env.MESHGATE_BENCH_SOURCE === '1' ? ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts')] : [join(root, 'bin', 'meshgate.js')];
  const child = spawn(process.execPath, [...nodeFlags, ...entry, 'serve', '--config', configPath, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    if (!line.startsWith('{')) continue;
    const record = JSON.parse(line) as { message?: string; address?: string; metricsPort?: number | null; workers?: { pid: number }[] };
    if (record.message?.startsWith('meshgate: listening on') !== true) continue;
    // Its later log lines are read and dropped: a full pipe would stall the process.
    lines.close();
    child.stdout!.resume();
    const pids = [child.pid!, ...(record.workers ?? []).map((worker) => worker.pid)];
    return { child, port: Number(/:(\d+)$/.exec(record.address ?? '')?.[1]), metricsPort: record.metricsPort ?? null, pids };
  }
  throw new Error(`meshgate serve --config ${configPath} exited before it listened`);
}
