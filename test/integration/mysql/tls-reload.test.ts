/**
 * The listener picks up a renewed server certificate and a changed trust bundle without a
 * restart, and sessions opened before the change go on undisturbed.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { appendFile, readFile, rm, mkdtemp } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { encodeMessage } from '../../../src/engines/mysql/codec/framer.ts';
import { Capability } from '../../../src/engines/mysql/codec/constants.ts';
import { initCa, issueServerCert, issueSvid } from '../../../src/identity/ca.ts';
import { startHarness, STANDARD_WORKLOADS, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

/** The serial number of the certificate meshgate presents to a new connection. */
async function servedSerial(port: number, ca: Buffer): Promise<string> {
  const raw = netConnect({ host: '127.0.0.1', port });
  await once(raw, 'data');
  const sslRequest = Buffer.alloc(32);
  sslRequest.writeUInt32LE((Capability.PROTOCOL_41 | Capability.SSL | Capability.SECURE_CONNECTION) >>> 0, 0);
  raw.write(encodeMessage(sslRequest, 1));
  const secure = tlsConnect({ socket: raw, ca, servername: 'localhost' });
  await once(secure, 'secureConnect');
  const serial = secure.getPeerX509Certificate()!.serialNumber;
  secure.destroy();
  return serial;
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`${what} did not happen within 10 s`);
}

describe('TLS material reload', { skip: missing }, () => {
  let h: Harness;
  let otherCa: string;
  before(async () => {
    h = await startHarness({ name: 'reload', workloads: STANDARD_WORKLOADS });
    otherCa = await mkdtemp(join(tmpdir(), 'meshgate-reload-ca-'));
  });
  after(async () => {
    await cleanup(
      () => h?.stop(),
      () => rm(otherCa, { recursive: true, force: true }),
    );
  });

  it('serves a renewed certificate to new connections while open sessions go on', async () => {
    const ca = h.ssl('orders').ca;
    const open = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'u', database: h.database, ssl: h.ssl('orders') });
    const before = await servedSerial(h.port, ca);
    // Renew in place, as an agent or cert-manager would.
    const renewed = await issueServerCert({ caDir: h.caDir, outDir: join(h.dir, 'server'), ttlSeconds: 7200 });
    await eventually(async () => (await servedSerial(h.port, ca)) === renewed.serialNumber, 'serving the renewed certificate');
    assert.notEqual(renewed.serialNumber, before);
    const [rows] = await open.query<mysql.RowDataPacket[]>('SELECT 1 AS still_open');
    assert.equal(rows[0]!.still_open, 1);
    await open.end();
  });

  it('trusts a root added to the bundle file without a restart', async () => {
    await initCa({ dir: otherCa, trustDomain: TRUST_DOMAIN, force: true });
    const svid = await issueSvid({ caDir: otherCa, spiffeId: STANDARD_WORKLOADS.orders, outDir: otherCa, name: 'orders' });
    const ssl = { cert: await readFile(svid.certPath), key: await readFile(svid.keyPath), ca: h.ssl('orders').ca };
    const options = { host: '127.0.0.1', port: h.port, user: 'u', database: h.database, ssl };
    await assert.rejects(mysql.createConnection(options), /MG_CLIENT_CERT_UNTRUSTED/);
    await appendFile(join(h.caDir, 'bundle.pem'), await readFile(join(otherCa, 'bundle.pem')));
    await eventually(async () => {
      try {
        const conn = await mysql.createConnection(options);
        await conn.end();
        return true;
      } catch {
        return false;
      }
    }, 'accepting a certificate from the added root');
  });
});
