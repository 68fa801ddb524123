/**
 * meshgate's Dockerfile, stage by stage, in a temporary directory instead of a container
 * runtime: each stage gets its own root, WORKDIR and COPY are followed (COPY from the build
 * context takes only what .dockerignore lets in), RUN lines of the build stages run on this
 * machine. Two changes, both so a test run leaves the machine as it found it and stays fast:
 * `npm ci` takes `--prefer-offline` (npm's cache, filled by the checkout's own install), and
 * `npm cache clean --force` is dropped (it would empty that shared cache). The final stage's
 * RUN (apt-get, useradd) needs the image's own root filesystem and is only returned, not run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, posix } from 'node:path';
import { contextFiles, parseCopy, parseEnv, type IgnoreRule, type ParsedDockerfile, type Stage } from './dockerfile.ts';

export interface EmulatedImage {
  /** The temporary directory holding every stage's root. */
  readonly dir: string;
  /** The final stage's root: the image's filesystem as far as the Dockerfile makes it. */
  readonly root: string;
  /** The final stage's WORKDIR, and ENV as the image sets it. */
  readonly workdir: string;
  readonly env: ReadonlyMap<string, string>;
  /** RUN lines of the final stage, not run here. */
  readonly skippedRuns: readonly string[];
  /** Seconds each RUN took, by its command. */
  readonly timings: readonly { readonly command: string; readonly seconds: number }[];
}

/** The build steps this machine runs; anything else in a build stage fails the test, so it stays honest. */
const LOCAL_STEP = /^npm (ci|run build)(\s|$)/;

export function localCommand(run: string): string {
  const command = run.replace(/&&\s*npm cache clean --force/g, '').replace(/\bnpm ci\b/g, 'npm ci --prefer-offline');
  for (const part of command.split('&&')) {
    assert.match(part.trim(), LOCAL_STEP, `a build-stage RUN this test cannot repeat without a container: ${part.trim()}`);
  }
  return command;
}

export async function emulateImage(
  contextRoot: string,
  dockerfile: ParsedDockerfile,
  ignore: readonly IgnoreRule[],
): Promise<EmulatedImage> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-image-'));
  // mkdtemp makes it 0700: the image's non-root user must be able to reach /app inside it.
  await chmod(dir, 0o755);
  const context = await contextFiles(contextRoot, ignore);
  const roots = new Map<string, string>();
  const timings: { command: string; seconds: number }[] = [];
  let last: { root: string; workdir: string; env: Map<string, string>; skipped: string[] } | undefined;
  for (const [index, stage] of dockerfile.stages.entries()) {
    const root = join(dir, stage.name ?? `stage-${index}`);
    await mkdir(root, { recursive: true });
    const final = index === dockerfile.stages.length - 1;
    last = await runStage(stage, root, final, { contextRoot, context, roots, timings });
    roots.set(stage.name ?? String(index), root);
  }
  assert.ok(last !== undefined, 'the Dockerfile has no stage');
  return { dir, root: last.root, workdir: last.workdir, env: last.env, skippedRuns: last.skipped, timings };
}

interface StageInputs {
  readonly contextRoot: string;
  readonly context: readonly string[];
  readonly roots: ReadonlyMap<string, string>;
  readonly timings: { command: string; seconds: number }[];
}

async function runStage(stage: Stage, root: string, final: boolean, inputs: StageInputs) {
  let workdir = '/';
  const env = new Map<string, string>();
  const skipped: string[] = [];
  for (const instruction of stage.instructions) {
    if (instruction.op === 'WORKDIR') {
      workdir = posix.resolve(workdir, instruction.args);
      await mkdir(join(root, workdir), { recursive: true });
    } else if (instruction.op === 'ENV') {
      for (const [k, v] of parseEnv(instruction.args)) env.set(k, v);
    } else if (instruction.op === 'COPY') {
      const copy = parseCopy(instruction);
      const dest = posix.resolve(workdir, copy.dest);
      const intoDir = copy.dest.endsWith('/') || copy.sources.length > 1;
      for (const source of copy.sources) {
        if (copy.from === undefined) {
          await copyFromContext(inputs, source, join(root, dest), intoDir, instruction.line);
        } else {
          const from = inputs.roots.get(copy.from);
          assert.ok(from !== undefined, `COPY --from=${copy.from}: no such earlier stage (line ${instruction.line})`);
          const src = join(from, source);
          const isDir = (await stat(src)).isDirectory();
          await cp(src, isDir || !intoDir ? join(root, dest) : join(root, dest, basename(source)), { recursive: true, verbatimSymlinks: true });
        }
      }
    } else if (instruction.op === 'RUN') {
      if (final) {
        skipped.push(instruction.args);
        continue;
      }
      const command = localCommand(instruction.args);
      const started = performance.now();
      await sh(command, join(root, workdir), env);
      inputs.timings.push({ command, seconds: (performance.now() - started) / 1000 });
    }
  }
  return { root, workdir, env, skipped };
}

async function copyFromContext(inputs: StageInputs, source: string, dest: string, intoDir: boolean, line: number) {
  const clean = source.replace(/^\.\/|\/$/g, '');
  const files = inputs.context.filter((f) => f === clean || f.startsWith(`${clean}/`));
  assert.ok(files.length > 0, `COPY ${source}: not in the build context (.dockerignore keeps it out?), Dockerfile line ${line}`);
  for (const file of files) {
    const target = file === clean ? (intoDir ? join(dest, basename(file)) : dest) : join(dest, file.slice(clean.length + 1));
    await cp(join(inputs.contextRoot, file), target, { verbatimSymlinks: true });
  }
}

/** A RUN line: sh -c in the stage's WORKDIR, with the stage's ENV and none of an outer npm's settings. */
function sh(command: string, cwd: string, stageEnv: ReadonlyMap<string, string>): Promise<void> {
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  for (const [k, v] of stageEnv) env[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const output: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => output.push(d));
    child.stderr.on('data', (d: Buffer) => output.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`RUN ${command} (in ${cwd}) exited ${String(code)}:\n${Buffer.concat(output).toString().slice(-4000)}`));
    });
  });
}
