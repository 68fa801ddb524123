/**
 * The image definition keeps the promises a Kubernetes user relies on (issue 16): built in
 * stages, only production dependencies and compiled code in the image, a numeric non-root user
 * (runAsNonRoot), tini as PID 1 so SIGTERM reaches meshgate's drain, `meshgate serve` as the
 * command, every port and every written directory of the example configs declared, and a
 * build context that cannot carry node_modules, dist/, .git or test output in.
 * image-steps.test.ts repeats the Dockerfile's steps; scripts/image-build-local.sh builds it.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { execForm, isIgnored, parseArg, parseCopy, parseEnv, parseLabels, readDockerfile, type Stage } from '../../helpers/dockerfile.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const { dockerfile, ignore } = await readDockerfile(ROOT);
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string; license: string };
const final = dockerfile.stages.at(-1)!;
const stageByName = (name: string) => dockerfile.stages.find((s) => s.name === name);
const only = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op);
const lastOf = (stage: Stage, op: string) => {
  const found = only(stage, op).at(-1);
  assert.ok(found !== undefined, `the final stage has no ${op}`);
  return found;
};

describe('Dockerfile', () => {
  it('builds in stages from node:20-bookworm-slim, which a build argument can replace', () => {
    assert.ok(dockerfile.stages.length >= 2, 'a multi-stage build: compiler and devDependencies stay out of the image');
    const [arg, base] = [...dockerfile.globalArgs].find(([, value]) => value?.startsWith('node:')) ?? [];
    assert.equal(base, 'node:20-bookworm-slim');
    for (const stage of dockerfile.stages) assert.equal(stage.from, `\${${arg}}`, `every stage starts FROM \${${arg}}`);
  });

  it('compiles in a build stage and installs only production dependencies for the image', () => {
    const build = dockerfile.stages.find((s) => only(s, 'RUN').some((r) => /npm run build/.test(r.args)));
    assert.ok(build !== undefined && build !== final, 'npm run build runs in an earlier stage');
    assert.ok(only(build, 'RUN').some((r) => /\bnpm ci\b/.test(r.args)), 'the build stage installs from the lock file (npm ci)');
    const copies = only(final, 'COPY').map(parseCopy);
    const fromStage = copies.filter((c) => c.from !== undefined);
    const modules = fromStage.find((c) => c.sources.some((s) => s.endsWith('/node_modules')));
    assert.ok(modules !== undefined, 'node_modules comes from another stage');
    const depsRuns = only(stageByName(modules.from!)!, 'RUN').map((r) => r.args);
    assert.ok(depsRuns.some((r) => /npm ci\b.*--omit=dev/.test(r)), `the node_modules stage runs npm ci --omit=dev: ${depsRuns.join('; ')}`);
    assert.ok(fromStage.some((c) => c.from === build.name && c.sources.some((s) => s.endsWith('/dist'))), 'dist/ comes from the build stage');
  });

  it('puts in the image only node_modules, dist/, bin/ and package.json: no src/, test/, bench/', () => {
    const workdir = lastOf(final, 'WORKDIR').args;
    const dests = only(final, 'COPY').flatMap((i) => {
      const c = parseCopy(i);
      return c.sources.map((s) => (c.dest.endsWith('/') ? posix.join(workdir, c.dest, posix.basename(s)) : posix.resolve(workdir, c.dest)));
    });
    assert.deepEqual(dests.sort(), ['/app/bin', '/app/dist', '/app/node_modules', '/app/package.json']);
    for (const c of only(final, 'COPY').map(parseCopy).filter((copy) => copy.from === undefined)) {
      for (const s of c.sources) assert.doesNotMatch(s, /(^|\/)(src|test|bench|scripts|\.git)(\/|$)/, `COPY ${s} into the image`);
    }
  });

  it('runs as a numeric non-root user, with tini as PID 1 and meshgate serve as the command', () => {
    const user = lastOf(final, 'USER').args;
    const match = /^(\d+)(?::(\d+))?$/.exec(user);
    assert.ok(match !== null, `USER ${user}: numeric uid[:gid], so runAsNonRoot can check it without /etc/passwd`);
    assert.ok(Number(match[1]) > 0 && Number(match[2] ?? 1) > 0, 'neither uid nor gid is root');
    const run = only(final, 'RUN').map((r) => r.args).join('\n');
    assert.match(run, /apt-get install[^\n]*\btini\b/, 'tini is installed from Debian');
    assert.match(run, new RegExp(`useradd[^\\n]*--uid ${match[1]}\\b`), 'the user exists (tools that look names up find it)');
    assert.deepEqual(execForm(lastOf(final, 'ENTRYPOINT')), ['/usr/bin/tini', '--', 'node', '/app/bin/meshgate.js']);
    assert.deepEqual(execForm(lastOf(final, 'CMD')), ['serve', '--config', '/etc/meshgate/meshgate.yaml']);
    const env = new Map(only(final, 'ENV').flatMap((e) => [...parseEnv(e.args)]));
    assert.equal(env.get('NODE_ENV'), 'production');
  });

  it("exposes the example configs' ports and declares as volumes every directory they write", async () => {
    const exposed = new Set(only(final, 'EXPOSE').flatMap((e) => e.args.split(/\s+/).map((p) => Number(p.replace(/\/tcp$/, '')))));
    const volumes = only(final, 'VOLUME').flatMap(execForm);
    const examples = (await readdir(join(ROOT, 'deploy/examples'))).filter((f) => f.endsWith('.yaml'));
    assert.ok(examples.length > 0);
    for (const file of examples) {
      const config = parse(await readFile(join(ROOT, 'deploy/examples', file), 'utf8')) as Record<string, Record<string, unknown> | undefined>;
      const ports = [config['listener']?.['port'], config['firestore']?.['port'], config['admin']?.['port'], config['metrics']?.['listen']]
        .filter((p) => p !== undefined)
        .map((p) => Number(String(p).split(':').at(-1)));
      for (const port of ports) assert.ok(exposed.has(port), `${file}: port ${port} is not EXPOSEd (${[...exposed].join(' ')})`);
      const stateDir = (config['state']?.['embedded'] as { dir?: string } | undefined)?.dir;
      const auditFile = config['audit']?.['file'] as string | undefined;
      for (const written of [stateDir, auditFile === undefined ? undefined : dirname(auditFile)]) {
        if (written === undefined) continue;
        assert.ok(volumes.some((v) => written === v || written.startsWith(`${v}/`)), `${file}: ${written} is written but under no VOLUME (${volumes.join(' ')})`);
      }
    }
    for (const port of [3307, 8443, 9440, 9464]) assert.ok(exposed.has(port), `the default port ${port} is exposed`);
  });

  it('carries OCI labels that agree with package.json', () => {
    const labels = new Map(only(final, 'LABEL').flatMap((l) => [...parseLabels(l.args)]));
    const args = new Map(only(final, 'ARG').map((a) => parseArg(a.args)));
    assert.equal(labels.get('org.opencontainers.image.title'), 'meshgate');
    assert.equal(labels.get('org.opencontainers.image.licenses'), pkg.license);
    assert.equal(labels.get('org.opencontainers.image.version'), '${VERSION}');
    assert.equal(args.get('VERSION'), pkg.version, 'the default VERSION is package.json version');
    for (const key of ['description', 'revision', 'created']) assert.ok(labels.has(`org.opencontainers.image.${key}`), `label ${key}`);
  });

  it('.dockerignore keeps node_modules, dist/, .git, demo output, tests and logs out of the build context', () => {
    for (const path of ['node_modules/typescript/package.json', 'dist/cli/main.js', '.git/HEAD', '.meshgate/ca/ca.key', 'test/unit/x.test.ts', 'bench/mysql.ts', 'src/node_modules/x.js', 'src/debug.log', '.scratch/prof.mjs']) {
      assert.ok(isIgnored(ignore, path), `${path} would be in the build context`);
    }
    for (const path of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src/cli/main.ts', 'bin/meshgate.js']) {
      assert.ok(!isIgnored(ignore, path), `${path} is left out of the build context, but the Dockerfile copies it`);
    }
  });
});
