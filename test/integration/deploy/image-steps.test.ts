/**
 * The Dockerfile's steps, repeated without a container runtime (CI has none): the build
 * context per .dockerignore, the build stage's `npm ci` and `npm run build`, the production-only
 * install, the runtime stage's COPYs, all in a clean temporary directory (helpers/image-steps.ts).
 * Then the result runs as the image runs it: as the image's numeric user (setpriv, when this
 * test runs as root), with /app bind-mounted read-only (when a mount namespace can be made),
 * NODE_ENV=production, and no devDependency within reach. `serve` starts against MariaDB from
 * a config the image's own CLI makes, answers /readyz, and exits 0 on SIGTERM.
 * scripts/image-build-local.sh does the same with a real image under podman.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chown, lstat, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { readDockerfile } from '../../helpers/dockerfile.ts';
import { emulateImage, type EmulatedImage } from '../../helpers/image-steps.ts';
import { MARIADB_TARGET, serviceMissing } from '../../helpers/services.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const { dockerfile, ignore } = await readDockerfile(ROOT);
const final = dockerfile.stages.at(-1)!;
const [UID, GID] = final.instructions.filter((i) => i.op === 'USER').at(-1)!.args.split(':').map(Number) as [number, number?];
const ROOTED = process.getuid?.() === 0;
/** A private mount namespace lets /app be read-only for the process, as `readOnlyRootFilesystem` makes it. */
const CAN_BIND_RO = ROOTED && spawnSync('unshare', ['--mount', 'true']).status === 0;
const mariadbMissing = await serviceMissing('mariadb');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

describe('the Dockerfile, step by step, without a container runtime', () => {
  let image: EmulatedImage | undefined;
  let app = '';
  before(async () => {
    image = await emulateImage(ROOT, dockerfile, ignore);
    app = join(image.root, image.workdir);
    for (const t of image.timings) console.log(`# ${t.seconds.toFixed(1)} s  RUN ${t.command}`);
  });
  after(async () => {
    if (image !== undefined) await rm(image.dir, { recursive: true, force: true });
  });

  /**
   * argv as the image runs it: its user, its ENV, /app read-only where possible; /app paths mapped
   * here, and HOME (the image's state volume) given as a directory of this test's.
   */
  const command = (argv: readonly string[], home = '/nonexistent') => {
    const mapped = argv.map((a) => (a.startsWith('/app/') ? join(app, a.slice('/app/'.length)) : a));
    const user = ROOTED ? ['setpriv', `--reuid=${UID}`, `--regid=${GID ?? UID}`, '--clear-groups', '--'] : [];
    const inner = [...user, ...mapped];
    const full = CAN_BIND_RO ? ['unshare', '--mount', '--', 'sh', '-c', 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"', app, ...inner] : inner;
    const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], ...Object.fromEntries(image!.env) };
    env['HOME'] = home;
    return { file: full[0]!, args: full.slice(1), env };
  };
  const run = async (argv: readonly string[], cwd = '/', home?: string): Promise<Run> => {
    const c = command(argv, home);
    const child = spawn(c.file, c.args, { cwd, env: c.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const [code] = (await once(child, 'close')) as [number | null];
    return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
  };
  /** The entrypoint after tini: node /app/bin/meshgate.js. */
  const ENTRY = final.instructions.filter((i) => i.op === 'ENTRYPOINT').at(-1)!;
  const meshgateArgv = (JSON.parse(ENTRY.args) as string[]).slice(2);

  it('installs exactly the production dependencies of the lock file: no devDependency', async () => {
    const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; optional?: boolean }> };
    const installed = await installedPackages(join(app, 'node_modules'));
    const dev = installed.filter((p) => lock.packages[p]?.dev === true);
    assert.deepEqual(dev, [], 'devDependencies in the image');
    assert.deepEqual(installed.filter((p) => lock.packages[p] === undefined), [], 'packages the lock file does not name');
    const wanted = Object.entries(lock.packages).filter(([p, v]) => p.startsWith('node_modules/') && v.dev !== true && v.optional !== true).map(([p]) => p);
    assert.deepEqual(wanted.filter((p) => !installed.includes(p)), [], 'production dependencies missing from the image');
    for (const name of ['typescript', 'tsx', 'fast-check']) {
      await assert.rejects(stat(join(app, 'node_modules', name)), `${name} is in the image`);
    }
    assert.deepEqual((await readdir(app)).sort(), ['bin', 'dist', 'node_modules', 'package.json']);
    console.log(`# ${installed.length} packages in the image's node_modules`);
  });

  it(`runs --help and serve --help as uid ${UID}${CAN_BIND_RO ? ' from a read-only /app' : ''}`, async () => {
    const help = await run([...meshgateArgv, '--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^usage: meshgate <command>/);
    const serveHelp = await run([...meshgateArgv, 'serve', '--help']);
    assert.equal(serveHelp.code, 0, serveHelp.stderr);
    assert.match(serveHelp.stdout, /^usage: meshgate serve \[--config meshgate\.yaml\]/);
    const id = await run(['node', '-e', 'console.log(process.getuid(), process.env.NODE_ENV); require("fs").writeFileSync(process.argv[1], "")', '/app/x']);
    assert.match(id.stdout, new RegExp(`^${ROOTED ? UID : process.getuid!()} production`));
    assert.notEqual(id.code, 0, 'the image user could write into /app');
    assert.match(id.stderr, CAN_BIND_RO ? /EROFS|EACCES/ : /EACCES/);
  });

  it('loads every compiled module with only the production dependencies', async () => {
    const probe = `
      const { readdirSync } = await import('node:fs');
      const walk = (d) => readdirSync(d, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? walk(d + '/' + e.name) : e.name.endsWith('.js') ? [d + '/' + e.name] : []);
      const files = walk(${JSON.stringify(join(app, 'dist'))});
      for (const f of files) await import(f);
      console.log(files.length);
      process.exit(0);`;
    const result = await run(['node', '--input-type=module', '-e', probe]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(Number(result.stdout) > 50, `imported ${result.stdout.trim()} modules`);
  });

  it('serves MariaDB from a config its own CLI made, is ready, and exits 0 on SIGTERM', { skip: mariadbMissing }, async () => {
    const vol = join(image!.dir, 'volumes');
    const [etc, state, audit] = ['etc', 'state', 'audit'].map((d) => join(vol, d)) as [string, string, string];
    for (const d of [etc, state, audit]) {
      await mkdir(d, { recursive: true });
      if (ROOTED) await chown(d, UID, GID ?? UID);
    }
    await mkdir(join(etc, 'secrets'));
    for (const step of [['ca', 'init', '--trust-domain', 'cluster.local', '--dir', 'ca'], ['ca', 'issue-server', '--dir', 'ca', '--out', 'tls'], ['policy', 'init', '--dir', 'policy']]) {
      const made = await run([...meshgateArgv, ...step], etc, etc);
      assert.equal(made.code, 0, `${step.join(' ')}: ${made.stderr}`);
    }
    await writeFile(join(etc, 'secrets/upstream'), MARIADB_TARGET.password);
    const account = { user: MARIADB_TARGET.user, password: { file: 'secrets/upstream' } };
    await writeFile(
      join(etc, 'meshgate.yaml'),
      stringify({
        listener: { host: '127.0.0.1', port: 0, tls: { cert: 'tls/server.crt', key: 'tls/server.key' } },
        trust: { bundles: ['ca/bundle.pem'], trustDomains: ['cluster.local'] },
        upstream: { host: MARIADB_TARGET.host, port: MARIADB_TARGET.port, roles: { app_writer: account, app_reader: account } },
        state: { embedded: { dir: state } },
        policy: { dir: 'policy' },
        audit: { file: join(audit, 'audit.jsonl') },
        metrics: { listen: '127.0.0.1:0' },
      }),
    );
    const before = await listing(app);
    const c = command([...meshgateArgv, 'serve', '--config', join(etc, 'meshgate.yaml')], state);
    const child = spawn(c.file, c.args, { cwd: '/', env: c.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    try {
      // meshgate's log is JSON lines on stdout; stderr is read too, for a start that fails.
      const lines: string[] = [];
      let metricsPort = 0;
      const started = new Promise<void>((resolve) => {
        for (const stream of [child.stdout, child.stderr]) {
          createInterface({ input: stream }).on('line', (line) => {
            lines.push(line);
            const m = /"metrics listening".*"port":(\d+)/.exec(line);
            if (m) metricsPort = Number(m[1]);
            if (line.includes('"message":"meshgate: listening on')) resolve();
          });
        }
        void exited.then(() => resolve());
      });
      await Promise.race([started, new Promise((resolve) => setTimeout(resolve, 30_000).unref())]);
      assert.ok(metricsPort > 0, `meshgate did not start:\n${lines.join('\n')}`);
      const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
      assert.equal(ready.status, 200, await ready.text());
      const stopping = performance.now();
      child.kill('SIGTERM');
      const [code, signal] = await exited;
      console.log(`# exited ${String(code ?? signal)} ${(performance.now() - stopping).toFixed(0)} ms after SIGTERM`);
      assert.equal(code, 0, lines.join('\n'));
    } finally {
      child.kill('SIGKILL');
    }
    const auditStat = await stat(join(audit, 'audit.jsonl'));
    if (ROOTED) assert.equal(auditStat.uid, UID, 'the audit file belongs to the image user');
    assert.deepEqual(await listing(app), before, 'serve changed something under /app');
  });
});

/** Every package directory under node_modules, as the lock file names it (node_modules/a/node_modules/@s/b). */
async function installedPackages(dir: string, prefix = 'node_modules'): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith('.')) continue;
    if (name.startsWith('@')) {
      for (const scoped of await readdir(join(dir, name))) found.push(...(await packageAt(join(dir, name, scoped), `${prefix}/${name}/${scoped}`)));
    } else {
      found.push(...(await packageAt(join(dir, name), `${prefix}/${name}`)));
    }
  }
  return found.sort();
}

async function packageAt(dir: string, name: string): Promise<string[]> {
  if (!(await lstat(dir)).isDirectory()) return [];
  return [name, ...(await installedPackages(join(dir, 'node_modules'), `${name}/node_modules`))];
}

/** Paths, sizes and modes under a directory: what a process could have changed. */
async function listing(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return Promise.all(entries.sort().map(async (e) => {
    const s = await lstat(join(dir, e));
    return `${e} ${s.size} ${s.mode} ${s.mtimeMs}`;
  }));
}
