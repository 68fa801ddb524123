/**
 * meshgate → MariaDB over TLS with meshgate's own client certificate (`upstream.tls`), on a
 * private MariaDB with ssl_cert/ssl_key/ssl_ca (the shared server has no TLS). Lease accounts
 * are created `REQUIRE SUBJECT … AND ISSUER …` naming that certificate, so a lease password
 * alone logs in nowhere: not without TLS, not with TLS and no certificate, not with another
 * certificate of the same CA. Sessions, pooled connections, the lease manager, the upstream
 * check and the settings reader all go over TLS (the admin account requires the certificate
 * too, so any of them that did not would fail).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { resolveConfig } from '../../../src/config/load.ts';
import { Capability, RELAYABLE_CAPABILITIES } from '../../../src/engines/mysql/codec/constants.ts';
import { mariadbUpstreamCheck } from '../../../src/engines/mysql/upstream-check.ts';
import { connectUpstream, type UpstreamLogin } from '../../../src/engines/mysql/upstream.ts';
import { quit } from '../../../src/engines/mysql/pool.ts';
import { initCa, issueServerCert } from '../../../src/identity/ca.ts';
import { openMariadbClientTls, type MariadbClientTls } from '../../../src/transport/mariadb-client-tls.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { MARIADB, STANDARD_WORKLOADS } from '../../helpers/meshgate.ts';
import { privateMariadbMissing } from '../../helpers/private-mariadb.ts';
import { serviceMissing } from '../../helpers/services.ts';
import { identityOf, startTlsUpstreamHarness, UPSTREAM_CERT_CN, type TlsUpstreamHarness } from '../../helpers/tls-upstream.ts';

const missing = privateMariadbMissing();
const sharedMissing = await serviceMissing('mariadb');
const ORDERS = STANDARD_WORKLOADS.orders;

const login = (user: string, password: string): UpstreamLogin => ({
  user,
  password,
  database: null,
  capabilities: (RELAYABLE_CAPABILITIES & ~(Capability.SSL | Capability.LOCAL_FILES)) >>> 0,
  mariadbCapabilities: 0,
  charset: 45,
  maxPacketSize: 16 * 1024 * 1024,
  attributes: new Map(),
});

describe('meshgate connects to MariaDB over TLS with its own certificate (upstream.tls)', { skip: missing ?? false, timeout: 180_000 }, () => {
  let h: TlsUpstreamHarness | undefined;
  const opened: mysql.Connection[] = [];
  const tlsHandles: MariadbClientTls[] = [];

  const client = async () => {
    const conn = await h!.connect('orders');
    opened.push(conn);
    return conn;
  };
  const one = async <T>(conn: mysql.Connection, sql: string): Promise<T> => {
    const [rows] = await conn.query(sql);
    return (rows as T[])[0]!;
  };

  before(async () => {
    h = await startTlsUpstreamHarness({ name: 'upstls' });
  });
  after(async () => {
    await cleanup(
      ...opened.map((conn) => () => conn.end().catch(() => conn.destroy())),
      ...tlsHandles.map((tls) => () => tls.close()),
      () => h?.stop(),
    );
  });

  it('a session runs on a TLS connection as its lease account, which requires meshgate’s certificate', async () => {
    const conn = await client();
    const status = await one<{ Value: string }>(conn, "SHOW SESSION STATUS LIKE 'Ssl_version'");
    assert.match(status.Value, /^TLSv1\.[23]$/, 'the upstream connection is TLS');
    const { user } = await one<{ user: string }>(conn, 'SELECT CURRENT_USER() AS user');
    const account = user.slice(0, user.lastIndexOf('@'));
    assert.match(account, /^mg-/);
    const [row] = await h!.root<{ ssl_type: string; x509_subject: string; x509_issuer: string }[]>(
      'SELECT ssl_type, CONVERT(x509_subject USING utf8mb4) AS x509_subject, CONVERT(x509_issuer USING utf8mb4) AS x509_issuer FROM mysql.user WHERE User = ?',
      [account],
    );
    assert.deepEqual({ ...row }, { ssl_type: 'SPECIFIED', x509_subject: h!.requirement.subject, x509_issuer: h!.requirement.issuer });
    await conn.end();
  });

  it('a pooled TLS connection is parked and renewed for the next session', async () => {
    const pool = h!.meshgate.pool!;
    pool.drain();
    const first = await client();
    const { id } = await one<{ id: number }>(first, 'SELECT CONNECTION_ID() AS id');
    await first.end();
    for (let i = 0; i < 300 && pool.idleCount === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(pool.idleCount, 1, 'parked');
    const reusedBefore = pool.stats.reused;
    const second = await client();
    assert.equal((await one<{ id: number }>(second, 'SELECT CONNECTION_ID() AS id')).id, id, 'the same upstream connection');
    assert.equal(pool.stats.reused, reusedBefore + 1);
    assert.match((await one<{ Value: string }>(second, "SHOW SESSION STATUS LIKE 'Ssl_version'")).Value, /^TLSv1\.[23]$/);
    assert.deepEqual(await one(second, 'SELECT 1 + 1 AS two'), { two: 2 });
    await second.end();
  });

  it('the lease password alone logs in nowhere: not without TLS, not without a certificate, not with another certificate of the CA', async () => {
    const { meshgate, role, database } = h!;
    const credential = await meshgate.credentials!.leases.sessionCredential(identityOf(ORDERS), role, database);
    const refused = async (ssl: Parameters<TlsUpstreamHarness['direct']>[2], what: string) => {
      await assert.rejects(h!.direct(credential.username, credential.password, ssl), (error: { errno?: number }) => error.errno === 1045, what);
    };
    await refused(undefined, 'without TLS');
    await refused({ ca: h!.upstreamCert.ca }, 'TLS without a client certificate');
    await refused(h!.clients['orders']!, "the workload's own SVID");
    await refused(h!.listenerCert, "meshgate's listener certificate (same CA, another subject)");
    // The same subject from another CA: MariaDB's ssl_ca does not trust it, so TLS itself fails.
    await initCa({ dir: `${h!.dir}/other-ca`, trustDomain: 'other.example' });
    const lookalike = await issueServerCert({ caDir: `${h!.dir}/other-ca`, outDir: `${h!.dir}/other`, dnsNames: [UPSTREAM_CERT_CN], name: 'lookalike' });
    await assert.rejects(h!.direct(credential.username, credential.password, { cert: lookalike.certPath, key: lookalike.keyPath, ca: h!.upstreamCert.ca }), 'a look-alike certificate of another CA');
    // The control: with meshgate's upstream certificate, the same password logs in.
    const conn = await h!.direct(credential.username, credential.password, h!.upstreamCert);
    opened.push(conn);
    assert.deepEqual(await one(conn, 'SELECT 1 AS ok'), { ok: 1 });
  });

  it('the upstream check logs in over TLS: the admin account and a static account that require the certificate', async () => {
    const staticUser = 'upstls_static';
    const password = 'static-account-password';
    await h!.root(`CREATE USER ${staticUser}@'%' IDENTIFIED BY ? REQUIRE SUBJECT ? AND ISSUER ?`, [password, h!.requirement.subject, h!.requirement.issuer]);
    const config = resolveConfig(
      {
        listener: { port: 0, tls: { cert: h!.listenerCert.cert, key: h!.listenerCert.key } },
        trust: { bundles: [h!.upstreamCert.ca], trustDomains: ['test.meshgate.local'] },
        policy: { dir: h!.files.policyDir },
        upstream: { host: h!.server.host, port: h!.server.port, tls: { ...h!.upstreamCert }, roles: { [h!.role]: { user: staticUser, password: { env: 'UPSTLS_STATIC' } } } },
      },
      `${h!.dir}/static.yaml`,
    );
    const tls = await openMariadbClientTls(config.upstream!.tls!);
    tlsHandles.push(tls);
    assert.deepEqual(await mariadbUpstreamCheck(config.upstream!, { UPSTLS_STATIC: password }, tls).run(), []);
    // The same check without TLS: the account refuses meshgate (the control).
    const problems = await mariadbUpstreamCheck(config.upstream!, { UPSTLS_STATIC: password }, null).run();
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.upstreamError, 1045);
  });

  it('verify-full checks the name meshgate connects to; verify-ca only the chain', async () => {
    const full = await openMariadbClientTls({ ...h!.upstreamCert, verify: 'verify-full' });
    const caOnly = await openMariadbClientTls({ ...h!.upstreamCert, verify: 'verify-ca' });
    tlsHandles.push(full, caOnly);
    // MariaDB's certificate names 127.0.0.1 only: reached as "localhost", verify-full refuses it.
    const byName = { host: 'localhost', port: h!.server.port, connectTimeoutMs: 5000 };
    await assert.rejects(connectUpstream({ ...byName, tls: full }, login('root', '')), (error: { code?: string; message: string }) => {
      assert.equal(error.code, 'MG_UPSTREAM_UNAVAILABLE');
      assert.match(error.message, /TLS/);
      assert.match(error.message, /localhost/);
      assert.match(error.message, /upstream\.tls/);
      return true;
    });
    // Root logs in without a certificate requirement, so the login itself succeeds once TLS does.
    const viaCa = await connectUpstream({ ...byName, tls: caOnly }, login('root', ''));
    quit(viaCa);
    const viaIp = await connectUpstream({ host: h!.server.host, port: h!.server.port, connectTimeoutMs: 5000, tls: full }, login('root', ''));
    quit(viaIp);
  });

  it('a MariaDB without TLS is refused with a message that says so', { skip: sharedMissing }, async () => {
    const tls = await openMariadbClientTls({ ...h!.upstreamCert, verify: 'verify-ca' });
    tlsHandles.push(tls);
    await assert.rejects(connectUpstream({ host: MARIADB.host, port: MARIADB.port, connectTimeoutMs: 5000, tls }, login(MARIADB.user, MARIADB.password)), (error: { code?: string; message: string }) => {
      assert.equal(error.code, 'MG_UPSTREAM_UNAVAILABLE');
      assert.match(error.message, /does not offer TLS/);
      return true;
    });
  });

  // Last: it changes meshgate's certificate for the rest of the file.
  it('a certificate renewed with another subject is picked up without a restart: new leases require it, the old lease retires without an alert', async () => {
    const { meshgate } = h!;
    // The admin account must accept the new certificate too; an operator renewing with a new
    // subject changes its REQUIRE first (README). Any certificate of the CA, here.
    await h!.root(`ALTER USER ?@'%' REQUIRE ISSUER ?`, [h!.adminUser, h!.requirement.issuer]);
    const first = await client();
    const before = await one<{ user: string }>(first, 'SELECT CURRENT_USER() AS user');
    await first.end();
    const renamed = `${UPSTREAM_CERT_CN}-renewed`;
    // Written where upstream.tls names the files (key first, then certificate, each atomically).
    await issueServerCert({ caDir: h!.caDir, outDir: `${h!.dir}/upstream`, dnsNames: [renamed], name: 'upstream', ttlSeconds: 3600 });
    const subjectOf = async (conn: mysql.Connection) => {
      const { user } = await one<{ user: string }>(conn, 'SELECT CURRENT_USER() AS user');
      const [row] = await h!.root<{ subject: string }[]>('SELECT CONVERT(x509_subject USING utf8mb4) AS subject FROM mysql.user WHERE User = ?', [user.slice(0, user.lastIndexOf('@'))]);
      return { user, subject: row?.subject };
    };
    let after: { user: string; subject: string | undefined } | undefined;
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
      const conn = await client();
      after = await subjectOf(conn);
      await conn.end();
      if (after.subject === `/O=meshgate/CN=${renamed}`) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(after?.subject, `/O=meshgate/CN=${renamed}`, 'a new lease requires the renewed certificate');
    assert.notEqual(after?.user, before.user);
    const oldAccount = before.user.slice(0, before.user.lastIndexOf('@'));
    const old = (await meshgate.credentials!.leases.list({ states: ['active', 'revoking', 'revoked'] })).find((lease) => lease.username === oldAccount);
    assert.equal(old?.state, 'revoked');
    assert.equal(old?.revokeReason, "meshgate's upstream certificate changed");
    const alerts = (await h!.readAudit()).filter((event) => event['type'] === 'alert');
    assert.deepEqual(alerts, [], 'a renewal is no compromise');
  });
});
