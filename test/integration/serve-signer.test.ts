/**
 * meshgate serves the SVID signing endpoint next to the MySQL listener: a workload with a
 * one-time join token runs `meshgate agent --once`, and the SVID it gets opens a session.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { runCli } from '../../src/cli/main.ts';
import { captureIO } from '../helpers/cli.ts';
import { JoinTokenStore } from '../../src/identity/signer/index.ts';
import { startHarness, STANDARD_WORKLOADS, type Harness } from '../helpers/meshgate.ts';
import { serviceMissing } from '../helpers/services.ts';

const missing = await serviceMissing('mariadb');

describe('serve with the signing endpoint', { skip: missing }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      name: 'signer',
      workloads: STANDARD_WORKLOADS,
      config: (c) => {
        c.signer = { host: '127.0.0.1', port: 0, caDir: 'ca', svidTtlSeconds: 3600 };
      },
    });
  });
  after(async () => h?.stop());

  it('issues an SVID to an agent with a join token, and that SVID logs in', async () => {
    assert.ok(h.meshgate.signerPort !== null && h.meshgate.signerPort > 0);
    const { token } = await new JoinTokenStore(h.caDir).create({ spiffeId: STANDARD_WORKLOADS.orders, ttlSeconds: 600 });
    const io = captureIO(h.dir);
    const outDir = join(h.dir, 'agent-out');
    const code = await runCli(
      ['agent', '--endpoint', `https://127.0.0.1:${h.meshgate.signerPort}`, '--ca-bundle', join(h.caDir, 'bundle.pem'), '--out', outDir, '--join-token', token, '--once'],
      io,
    );
    assert.equal(code, 0, io.all.join('\n'));
    const ssl = { cert: await readFile(join(outDir, 'svid.crt')), key: await readFile(join(outDir, 'svid.key')), ca: await readFile(join(outDir, 'bundle.pem')) };
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'agent', database: h.database, ssl });
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_ROLE() AS r');
      assert.equal(rows[0]!.r, h.roles.rw);
    } finally {
      await conn.end();
    }
    const again = await runCli(
      ['agent', '--endpoint', `https://127.0.0.1:${h.meshgate.signerPort}`, '--ca-bundle', join(h.caDir, 'bundle.pem'), '--out', join(h.dir, 'again'), '--join-token', token, '--once'],
      io,
    );
    assert.equal(again, 77, 'a join token works once');
  });
});
