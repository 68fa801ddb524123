/**
 * Istio mode: TLS from the first byte, as a client sidecar originates it (ISTIO_MUTUAL,
 * ALPN istio-peer-exchange/istio). The application's driver speaks plain MySQL to its
 * sidecar; meshgate terminates the mTLS and takes the identity from the sidecar's SVID.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { PacketFramer } from '../../../src/engines/mysql/codec/framer.ts';
import { decodeErr } from '../../../src/engines/mysql/codec/generic.ts';
import { startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { startSidecar, type Sidecar } from '../../helpers/sidecar.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

describe('Istio mode (TLS from the first byte)', { skip: missing }, () => {
  let h: Harness;
  const sidecars: Sidecar[] = [];
  before(async () => {
    h = await startHarness({
      name: 'istio',
      workloads: STANDARD_WORKLOADS,
      config: (c) => {
        c.listener.tls.mode = 'first-byte';
      },
    });
  });
  after(async () => {
    await cleanup(
      async () => {
        for (const s of sidecars) await s.close();
      },
      () => h?.stop(),
    );
  });

  it('serves mysql2 behind a sidecar, with the identity of the sidecar certificate', async () => {
    const sidecar = await startSidecar(h.port, h.ssl('orders'));
    sidecars.push(sidecar);
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: sidecar.port, user: 'app', database: h.database });
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_ROLE() AS r, 6 * 7 AS n');
      assert.deepEqual([rows[0]!.r, rows[0]!.n], [h.roles.rw, 42]);
      const [prepared] = await conn.execute<mysql.RowDataPacket[]>('SELECT ? AS v', ['inside']);
      assert.equal(prepared[0]!.v, 'inside');
    } finally {
      await conn.end();
    }
    assert.deepEqual(sidecar.negotiated, ['istio-peer-exchange']);
    const audit = await h.readAudit();
    const connection = audit.find((e) => e.type === 'connection' && e.decision === 'allow');
    assert.equal((connection?.identity as { spiffeId: string }).spiffeId, STANDARD_WORKLOADS.orders);
  });

  it('applies policy to the sidecar identity: a staging workload is denied', async () => {
    const sidecar = await startSidecar(h.port, h.ssl('staging'));
    sidecars.push(sidecar);
    await assert.rejects(
      mysql.createConnection({ host: '127.0.0.1', port: sidecar.port, user: 'app', database: h.database }),
      (e: Error) => /\[MG_POLICY_DENIED\].*deny-staging/.test(e.message),
    );
  });

  it('a driver wrapping its own TLS stream works the same', async () => {
    const conn = await mysql.createConnection({
      user: 'app',
      database: h.database,
      stream: () => tlsConnect({ host: '127.0.0.1', port: h.port, servername: 'localhost', ...h.ssl('analytics'), ALPNProtocols: ['istio'] }),
    });
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_ROLE() AS r');
      assert.equal(rows[0]!.r, h.roles.ro);
    } finally {
      await conn.end();
    }
  });

  it('tells a plain MySQL client that talks to the port directly what to do', async () => {
    const raw = netConnect({ host: '127.0.0.1', port: h.port });
    const [chunk] = (await once(raw, 'data')) as [Buffer];
    const [frame] = new PacketFramer(1024).push(chunk);
    assert.equal(frame!.payload[0], 0xff, 'an ERR packet in place of the greeting');
    assert.match(decodeErr(frame!.payload).message, /\[MG_TLS_REQUIRED\].*TLS from the first byte/);
    raw.destroy();
  });
});
