/**
 * HAProxy as the L4 peer a platform team would deploy: `mode tcp`, TLS terminated with the
 * client certificate verified (`verify required`), one thread, bytes to MariaDB. Null when
 * the `haproxy` Debian package is not installed: the benchmark then says so and goes on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { accepts, freePort } from '../src/dev/ports.ts';

const HAPROXY = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy'].find((path) => existsSync(path)) ?? null;

export interface RunningHaproxy {
  readonly child: ChildProcess;
  readonly port: number;
  readonly version: string;
}

export async function startHaproxy(dir: string, tls: { cert: string; key: string; ca: string }, upstream: { host: string; port: number }): Promise<RunningHaproxy | null> {
  if (HAPROXY === null) return null;
  const pem = join(dir, 'haproxy.pem');
  await writeFile(pem, `${await readFile(tls.cert, 'utf8')}\n${await readFile(tls.key, 'utf8')}`, { mode: 0o600 });
  const port = await freePort();
  const config = join(dir, 'haproxy.cfg');
  await writeFile(
    config,
    [
      'global',
      '  nbthread 1',
      '  ssl-default-bind-options ssl-min-ver TLSv1.3',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 1h',
      '  timeout server 1h',
      'frontend mysql_tls',
      `  bind 127.0.0.1:${port} ssl crt ${pem} ca-file ${tls.ca} verify required`,
      '  default_backend mariadb',
      'backend mariadb',
      `  server mariadb ${upstream.host}:${upstream.port}`,
      '',
    ].join('\n'),
  );
  const version = await new Promise<string>((resolve) => {
    const probe = spawn(HAPROXY, ['-v'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    probe.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    probe.on('close', () => resolve(/version (\S+)/.exec(out)?.[1] ?? 'unknown'));
  });
  const child = spawn(HAPROXY, ['-db', '-f', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 100; i++) {
    if (await accepts(port)) return { child, port, version };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`HAProxy did not listen on ${port} within 5 s (config ${config})`);
}
