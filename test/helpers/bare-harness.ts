/**
 * What every test harness has, MariaDB or not: a temp dir with a CA, workload certificates,
 * meshgate's own certificate and a policy, and meshgate running on a config built from them.
 * `startBareHarness` runs engines that need no MariaDB (Firestore) and makes nothing there;
 * meshgate.ts adds the MariaDB database, roles and accounts for the MySQL engine.
 */
import { mkdtemp, rm, writeFile, mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../../src/config/load.ts';
import type { MeshgateConfigInput } from '../../src/config/schema.ts';
import { initCa, issueServerCert, issueSvid } from '../../src/identity/ca.ts';
import type { Logger } from '../../src/log.ts';
import { silentLogger } from '../../src/log.ts';
import { startMeshgate, type RunningMeshgate } from '../../src/server.ts';

export const TRUST_DOMAIN = 'test.meshgate.local';

export interface ClientFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** What every harness offers: a CA, workload certificates, a policy, and meshgate running on them. */
export interface BaseHarness {
  readonly dir: string;
  readonly caDir: string;
  readonly auditFile: string;
  readonly meshgate: RunningMeshgate;
  /** Certificate files per workload name given to the harness. */
  readonly clients: Readonly<Record<string, ClientFiles>>;
  /** mysql2 / mariadb / grpc `ssl` options for a workload. */
  ssl(workload: string): { cert: Buffer; key: Buffer; ca: Buffer };
  readAudit(): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

/** A harness without MariaDB: the caller names the engine sections (Firestore, say). */
export interface BareHarnessOptions {
  /** Short name for the temp dir. */
  readonly name: string;
  readonly workloads: Readonly<Record<string, string>>;
  /** Policy YAML, as is. */
  readonly policy: string;
  /** The engine sections, given the harness's files (its server certificate). */
  readonly engines: (files: HarnessFiles) => Partial<MeshgateConfigInput>;
  readonly config?: (config: MeshgateConfigInput) => void;
  readonly log?: Logger;
}

/** What a harness writes before meshgate starts. */
export interface HarnessFiles {
  readonly dir: string;
  readonly caDir: string;
  /** meshgate's own certificate, issued by the harness's CA. */
  readonly server: { readonly cert: string; readonly key: string };
  readonly clients: Readonly<Record<string, ClientFiles>>;
  readonly policyDir: string;
  readonly auditFile: string;
  readonly stateDir: string;
}

export type Undo = (() => Promise<unknown>)[];

/** Runs `assemble` in a fresh temp dir; whatever it made is undone if it fails, so a failed start leaves nothing. */
export async function inTempDir<T>(name: string, assemble: (dir: string, undo: Undo, undoAll: () => Promise<void>) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `meshgate-${name}-`));
  const undo: Undo = [() => rm(dir, { recursive: true, force: true })];
  const undoAll = async () => {
    for (const step of undo.splice(0).reverse()) await step().catch(() => undefined);
  };
  try {
    return await assemble(dir, undo, undoAll);
  } catch (error) {
    await undoAll();
    throw error;
  }
}

export async function writeHarnessFiles(dir: string, workloads: Readonly<Record<string, string>>, policy: string): Promise<HarnessFiles> {
  const caDir = join(dir, 'ca');
  await initCa({ dir: caDir, trustDomain: TRUST_DOMAIN });
  const server = await issueServerCert({ caDir, outDir: join(dir, 'server'), ttlSeconds: 3600 });
  const clients: Record<string, ClientFiles> = {};
  for (const [workload, spiffeId] of Object.entries(workloads)) {
    const issued = await issueSvid({ caDir, spiffeId, outDir: join(dir, 'clients'), name: workload, ttlSeconds: 3600 });
    clients[workload] = { cert: issued.certPath, key: issued.keyPath, ca: issued.bundlePath };
  }
  const policyDir = join(dir, 'policy');
  await mkdir(policyDir);
  await writeFile(join(policyDir, 'policy.yaml'), policy);
  return { dir, caDir, server: { cert: server.certPath, key: server.keyPath }, clients, policyDir, auditFile: join(dir, 'audit.jsonl'), stateDir: join(dir, 'state') };
}

/** The sections every harness config has; the engines' come from the caller. */
export function baseConfig(files: HarnessFiles): Pick<MeshgateConfigInput, 'trust' | 'state' | 'policy' | 'audit'> {
  return {
    trust: { bundles: [join(files.caDir, 'bundle.pem')], trustDomains: [TRUST_DOMAIN] },
    state: { embedded: { dir: files.stateDir } },
    policy: { dir: files.policyDir },
    audit: { file: files.auditFile },
  };
}

/** meshgate started on `input`, and what every harness offers around it. */
export async function runMeshgate(files: HarnessFiles, input: MeshgateConfigInput, log: Logger | undefined, undo: Undo): Promise<BaseHarness> {
  const meshgate = await startMeshgate(resolveConfig(input, join(files.dir, 'meshgate.yaml')), log ?? silentLogger);
  undo.push(() => meshgate.close());
  const loaded: Record<string, { cert: Buffer; key: Buffer; ca: Buffer }> = {};
  for (const [workload, client] of Object.entries(files.clients)) {
    loaded[workload] = { cert: await readFile(client.cert), key: await readFile(client.key), ca: await readFile(client.ca) };
  }
  return {
    dir: files.dir,
    caDir: files.caDir,
    auditFile: files.auditFile,
    meshgate,
    clients: files.clients,
    ssl(workload) {
      const pems = loaded[workload];
      if (pems === undefined) throw new TypeError(`no certificate issued for workload ${workload}`);
      return pems;
    },
    async readAudit() {
      await meshgate.audit.flush();
      const text = await readFile(files.auditFile, 'utf8');
      return text
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    stop: () => meshgate.close(),
  };
}

/**
 * meshgate without its MySQL engine, and nothing made in MariaDB: for engines that need no
 * MariaDB (Firestore), so their suites run where there is none.
 */
export function startBareHarness(options: BareHarnessOptions): Promise<BaseHarness> {
  return inTempDir(options.name, async (dir, undo, undoAll) => {
    const files = await writeHarnessFiles(dir, options.workloads, options.policy);
    const input: MeshgateConfigInput = { ...baseConfig(files), ...options.engines(files) };
    options.config?.(input);
    const base = await runMeshgate(files, input, options.log, undo);
    let stopped = false;
    return {
      ...base,
      async stop() {
        if (stopped) return;
        stopped = true;
        await undoAll();
      },
    };
  });
}
