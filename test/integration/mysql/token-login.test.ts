/**
 * Callers without a certificate (CI jobs, people, pods with a projected service-account
 * token) log in with a JWT as their MySQL password, over TLS, through mysql_clear_password.
 * JWKS is served over HTTPS on loopback.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { startHarness, STANDARD_WORKLOADS, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { makeSigningKey, signToken, startJwksServer, type JwksServer, type SigningKey } from '../../helpers/jwks-server.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

const ISSUER = 'https://kubernetes.default.svc.cluster.local';

/** A Kubernetes projected service-account token's claims. */
function k8sClaims(namespace: string, serviceAccount: string, audience = 'meshgate') {
  return {
    iss: ISSUER,
    aud: [audience],
    sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
    'kubernetes.io': { namespace, serviceaccount: { name: serviceAccount, uid: '0d5f' } },
    exp: Math.floor(Date.now() / 1000) + 600,
    iat: Math.floor(Date.now() / 1000) - 5,
    nbf: Math.floor(Date.now() / 1000) - 5,
  };
}

describe('JWT as the MySQL password', { skip: missing }, () => {
  let h: Harness;
  let jwks: JwksServer;
  let key: SigningKey;

  before(async () => {
    key = await makeSigningKey('ES256', 'k8s-1');
    jwks = await startJwksServer([key.jwk]);
    h = await startHarness({
      name: 'token',
      workloads: STANDARD_WORKLOADS,
      config: (c) => {
        c.tokens = {
          issuers: [
            {
              issuer: ISSUER,
              audiences: ['meshgate'],
              jwks: { url: jwks.url, caFile: jwks.caFile },
              mapping: { kind: 'kubernetes' },
              trustDomain: TRUST_DOMAIN,
            },
          ],
        };
      },
    });
  });
  after(async () => {
    await cleanup(
      () => h?.stop(),
      () => jwks?.close(),
    );
  });

  const connect = (password: string, extra: mysql.ConnectionOptions = {}) =>
    mysql.createConnection({
      host: '127.0.0.1',
      port: h.port,
      user: 'ci',
      password,
      database: h.database,
      ssl: { ca: h.ssl('orders').ca },
      enableCleartextPlugin: true,
      ...extra,
    });

  it('maps a service-account token to the same identity and role as the SVID', async () => {
    const conn = await connect(await signToken(key, k8sClaims('shop', 'orders')));
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_ROLE() AS r');
      assert.equal(rows[0]!.r, h.roles.rw);
    } finally {
      await conn.end();
    }
    const audit = await h.readAudit();
    const allowed = audit.filter((e) => e.type === 'connection' && e.decision === 'allow').at(-1)!;
    assert.deepEqual(
      [(allowed.identity as { spiffeId: string }).spiffeId, (allowed.identity as { authMethod: string }).authMethod],
      [STANDARD_WORKLOADS.orders, 'jwt'],
    );
    assert.ok(!JSON.stringify(audit).includes('eyJ'), 'no token in the audit trail');
  });

  it('policy applies to token identities: the staging namespace is denied', async () => {
    await assert.rejects(connect(await signToken(key, k8sClaims('staging', 'orders'))), (e: Error) => /\[MG_POLICY_DENIED\].*deny-staging/.test(e.message));
  });

  it('refuses a token for another audience, an expired token and a forged one', async () => {
    await assert.rejects(connect(await signToken(key, k8sClaims('shop', 'orders', 'vault'))), (e: Error) => /\[MG_TOKEN_AUDIENCE\]/.test(e.message));
    const expired = { ...k8sClaims('shop', 'orders'), exp: Math.floor(Date.now() / 1000) - 3600, nbf: Math.floor(Date.now() / 1000) - 7200, iat: Math.floor(Date.now() / 1000) - 7200 };
    await assert.rejects(connect(await signToken(key, expired)), (e: Error) => /\[MG_TOKEN_EXPIRED\]/.test(e.message));
    const other = await makeSigningKey('ES256', 'k8s-1');
    await assert.rejects(connect(await signToken(other, k8sClaims('shop', 'orders'))), (e: Error) => /\[MG_TOKEN_INVALID\]/.test(e.message));
  });

  it('accepts the token only over TLS', async () => {
    await assert.rejects(connect(await signToken(key, k8sClaims('shop', 'orders')), { ssl: undefined }), (e: Error) => /\[MG_TLS_REQUIRED\]/.test(e.message));
  });

  it('the mariadb CLI logs in with a token as password', async () => {
    const token = await signToken(key, k8sClaims('shop', 'analytics'));
    const { stdout } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile(
        'mariadb',
        ['--no-defaults', '-h', '127.0.0.1', '-P', String(h.port), '-u', 'ci', `--password=${token}`, '--ssl', '--ssl-ca', h.clients.orders!.ca, '--batch', '--skip-column-names', '-e', 'SELECT CURRENT_ROLE()', h.database],
        { timeout: 15_000 },
        (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve({ stdout: out, stderr: err })),
      ),
    );
    assert.equal(stdout.trim(), h.roles.ro);
  });
});
