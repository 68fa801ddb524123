/**
 * Config and secrets as Kubernetes hands them to a pod, to `meshgate serve` as a process:
 * the config file in a ConfigMap volume (a symlink through `..data` to a timestamped
 * directory) named by MESHGATE_CONFIG, the replica id from the downward API through
 * `${env:POD_NAME}`, role passwords and the TLS pair from Secret volumes of the same shape,
 * the state store's URL from a Secret-backed variable. When the kubelet swaps the TLS
 * Secret's `..data` (cert-manager or Istio renewed it), new connections get the new
 * certificate without a restart.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { stringify } from 'yaml';
import { issueServerCert } from '../../../src/identity/ca.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { MARIADB, RUN_ID, STANDARD_WORKLOADS, startHarness, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { starttlsPeerCertificate } from '../../helpers/raw-mysql.ts';
import { killAll, startServe } from '../../helpers/serve-process.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

/** A volume as the kubelet writes one: files in `..<stamp>/`, `..data` → it, each name → `..data/name`. */
async function kubeletVolume(dir: string, files: Readonly<Record<string, string | Buffer>>, stamp: string): Promise<void> {
  await mkdir(join(dir, `..${stamp}`), { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, `..${stamp}`, name), content, { mode: 0o600 });
  await symlink(`..${stamp}`, join(dir, '..data'));
  for (const name of Object.keys(files)) await symlink(join('..data', name), join(dir, name));
}

/** The kubelet's atomic update: a new timestamped directory, then `..data` renamed over. */
async function kubeletSwap(dir: string, files: Readonly<Record<string, string | Buffer>>, stamp: string): Promise<void> {
  await mkdir(join(dir, `..${stamp}`));
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, `..${stamp}`, name), content, { mode: 0o600 });
  await symlink(`..${stamp}`, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
}

describe('config and secrets mounted as Kubernetes mounts them (meshgate serve as a process)', { skip: missing, timeout: 120_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ name: 'mounts', workloads: STANDARD_WORKLOADS });
  });
  after(() => cleanup(killAll, () => h?.stop()));

  it('starts from MESHGATE_CONFIG, ${env:…} and Secret volumes, and serves a renewed certificate after the kubelet swaps it', async () => {
    const pod = join(h.dir, 'pod');
    const tlsDir = join(pod, 'etc/meshgate/tls');
    const secretsDir = join(pod, 'etc/meshgate/secrets');
    const configDir = join(pod, 'etc/meshgate/config');
    await kubeletVolume(tlsDir, { 'tls.crt': await readFile(join(h.dir, 'server', 'server.crt')), 'tls.key': await readFile(join(h.dir, 'server', 'server.key')) }, '2026_12_07_00_00_00.1');
    const passwords: Record<string, string> = {};
    const roles: Record<string, unknown> = {};
    for (const account of h.provisioned.accounts.values()) {
      passwords[account.role] = account.password;
      roles[account.role] = { user: account.user, password: { file: join(secretsDir, account.role) } };
    }
    await kubeletVolume(secretsDir, passwords, '2026_12_07_00_00_00.2');
    await copyFile(join(h.dir, 'ca', 'bundle.pem'), join(pod, 'root-cert.pem'));
    const config = stringify({
      listener: { host: '127.0.0.1', port: 0, tls: { cert: join(tlsDir, 'tls.crt'), key: join(tlsDir, 'tls.key') } },
      trust: { bundles: [join(pod, 'root-cert.pem')], trustDomains: [TRUST_DOMAIN] },
      upstream: { host: '${env:MARIADB_HOST}', port: MARIADB.port, roles },
      state: { embedded: { dir: join(pod, 'var/lib/meshgate/state') }, replicaId: '${env:POD_NAME}' },
      policy: { dir: join(h.dir, 'policy') },
      audit: { file: join(pod, 'var/lib/meshgate/audit/audit-${env:POD_NAME}.jsonl') },
      metrics: { listen: '127.0.0.1:0' },
    });
    await kubeletVolume(configDir, { 'meshgate.yaml': config }, '2026_12_07_00_00_00.3');
    // The emptyDir volumes the pod mounts there.
    await mkdir(join(pod, 'var/lib/meshgate/audit'), { recursive: true });

    const podName = `meshgate-7d9f-${RUN_ID}`;
    const proc = await startServe(null, { MESHGATE_CONFIG: join(configDir, 'meshgate.yaml'), POD_NAME: podName, MARIADB_HOST: MARIADB.host });
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: proc.port, user: 'u', database: h.database, ssl: h.ssl('orders') });
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_ROLE() AS r');
    assert.equal(rows[0]!['r'], h.roles.rw);
    await conn.end();

    const before = await servedSerial(proc.port, h);
    const renewed = await issueServerCert({ caDir: join(h.dir, 'ca'), outDir: join(h.dir, 'renewed'), ttlSeconds: 3600 });
    await kubeletSwap(tlsDir, { 'tls.crt': await readFile(renewed.certPath), 'tls.key': await readFile(renewed.keyPath) }, '2026_12_07_01_00_00.4');
    const expected = new X509Certificate(await readFile(renewed.certPath)).serialNumber;
    assert.notEqual(before, expected);
    let served = before;
    for (let i = 0; i < 100 && served !== expected; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      served = await servedSerial(proc.port, h);
    }
    assert.equal(served, expected, 'new connections get the certificate the kubelet swapped in');
    assert.ok(proc.log().some((entry) => entry['message'] === 'TLS material reloaded'), 'the log says so');

    proc.child.kill('SIGTERM');
    assert.equal((await proc.exited).code, 0, proc.stderr());
    const audit = await readFile(join(pod, `var/lib/meshgate/audit/audit-${podName}.jsonl`), 'utf8');
    assert.match(audit, /"type":"statement"/, 'the audit file is named after the pod');
  });
});

/** The serial of the certificate meshgate presents to a new connection. */
async function servedSerial(port: number, h: Harness): Promise<string> {
  return (await starttlsPeerCertificate(port, h.ssl('orders'))).serialNumber;
}
