/**
 * MariaDB clients that are not Node packages, as Debian ships them: Connector/J, PyMySQL,
 * mysqlclient (MySQLdb), PHP mysqli, sysbench, mariadb-dump, mariadb-admin. A suite whose
 * client is absent skips, naming the package to install; `.ci/run` installs them all and sets
 * MESHGATE_TEST_REQUIRE=…,clients, and then an absent client fails the suite instead (a
 * single client can be required by its own name too, e.g. MESHGATE_TEST_REQUIRE=sysbench).
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRequired, serviceMissing } from './services.ts';

export type ExternalClient = 'connector-j' | 'pymysql' | 'mysqlclient' | 'php-mysqli' | 'sysbench' | 'mariadb-dump' | 'mariadb-admin';

/**
 * Debian's Python: python3-pymysql and python3-mysqldb install into its dist-packages only,
 * so a python3 earlier on PATH (pyenv, a venv) would not find them.
 */
export const PYTHON = process.env.MESHGATE_TEST_PYTHON ?? '/usr/bin/python3';
/** Where libmariadb-java puts Connector/J. */
export const CONNECTOR_J_JAR = process.env.MESHGATE_TEST_CONNECTOR_J_JAR ?? '/usr/share/java/mariadb-java-client.jar';

/** Runs quietly and says whether the program started and exited 0. */
function runs(command: string, args: readonly string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 20_000 });
  return result.error === undefined && result.status === 0;
}

const PROBES: Record<ExternalClient, { readonly present: () => boolean; readonly install: string }> = {
  'connector-j': {
    present: () => existsSync(CONNECTOR_J_JAR) && runs('javac', ['-version']) && runs('java', ['-version']),
    install: `Connector/J at ${CONNECTOR_J_JAR} and a JDK (apt-get install libmariadb-java default-jdk-headless; or set MESHGATE_TEST_CONNECTOR_J_JAR)`,
  },
  pymysql: {
    present: () => runs(PYTHON, ['-c', 'import pymysql']),
    install: `PyMySQL for ${PYTHON} (apt-get install python3-pymysql; or set MESHGATE_TEST_PYTHON)`,
  },
  mysqlclient: {
    present: () => runs(PYTHON, ['-c', 'import MySQLdb']),
    install: `mysqlclient (MySQLdb) for ${PYTHON} (apt-get install python3-mysqldb; or set MESHGATE_TEST_PYTHON)`,
  },
  'php-mysqli': {
    present: () => runs('php', ['-r', 'exit(extension_loaded("mysqli") ? 0 : 1);']),
    install: 'php with the mysqli extension (apt-get install php-cli php-mysql)',
  },
  sysbench: { present: () => runs('sysbench', ['--version']), install: 'sysbench (apt-get install sysbench)' },
  'mariadb-dump': {
    present: () => runs('mariadb-dump', ['--version']) && runs('mariadb', ['--version']),
    install: 'mariadb-dump and mariadb (apt-get install mariadb-client)',
  },
  'mariadb-admin': { present: () => runs('mariadb-admin', ['--version']), install: 'mariadb-admin (apt-get install mariadb-client)' },
};

/**
 * false when MariaDB answers and every named client is installed; otherwise the skip reason.
 * A missing client that MESHGATE_TEST_REQUIRE names (or `clients`, naming them all) throws.
 */
export async function clientMissing(...clients: ExternalClient[]): Promise<string | false> {
  for (const client of clients) {
    if (PROBES[client].present()) continue;
    const reason = `needs ${PROBES[client].install}`;
    if (isRequired('clients') || isRequired(client)) throw new Error(`MESHGATE_TEST_REQUIRE names ${isRequired(client) ? client : 'clients'}, but this suite ${reason}`);
    return reason;
  }
  return serviceMissing('mariadb');
}

export interface ProgramResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly cwd?: string;
  /** What the program reads on stdin (a dump to restore, say). */
  readonly input?: string | Buffer;
  /** Killed (SIGKILL) after this long; the promise then rejects with what it printed. */
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

/** Runs a client program to its end; a non-zero exit is a result, a time-out is an error. */
export function runProgram(command: string, args: readonly string[], options: RunOptions = {}): Promise<ProgramResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      { cwd: options.cwd, env: options.env, timeout: options.timeoutMs ?? 60_000, killSignal: 'SIGKILL', encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== 'number') {
          reject(new Error(`${command} ${args.join(' ')} did not finish: ${error.message}\n${stderr}`));
          return;
        }
        resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr });
      },
    );
    child.stdin!.end(options.input ?? '');
  });
}

/** Runs a program that must succeed, returning its stdout. */
export async function runOk(command: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const result = await runProgram(command, args, options);
  if (result.code !== 0) throw new Error(`${command} exited with ${result.code}:\n${result.stderr}\n${result.stdout.slice(0, 4000)}`);
  return result.stdout;
}

/** A fresh temp dir for a client's scripts and files, and the function that removes it. */
export async function clientDir(name: string): Promise<{ readonly dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `meshgate-${name}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** test/fixtures/clients/<name>: the client programs the tests run. */
export function fixture(name: string): string {
  return new URL(`../fixtures/clients/${name}`, import.meta.url).pathname;
}
