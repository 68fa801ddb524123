/**
 * The admin API over real HTTPS with real certificates from the built-in CA, and fakes for
 * what sits behind it (lease manager, policy, token verifier): routes, who may call what,
 * how errors become statuses, body limits, and that no secret reaches the log.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startAdminApi, type AdminApi, MAX_ADMIN_BODY_BYTES } from '../../../src/admin/api.ts';
import type { LeaseOperations } from '../../../src/admin/issue.ts';
import type { RevokeSelector } from '../../../src/credentials/leases.ts';
import { mgError } from '../../../src/errors/index.ts';
import { initCa, issueServerCert, issueSvid } from '../../../src/identity/ca.ts';
import type { Identity } from '../../../src/identity/types.ts';
import type { CredentialFacts } from '../../../src/audit/index.ts';
import { loadPolicyDir, loadPolicyDocuments, SwappablePolicy } from '../../../src/policy/index.ts';
import { PolicyReloader } from '../../../src/policy-reload/index.ts';
import { silentLogger } from '../../../src/log.ts';
import { writeFile, mkdir } from 'node:fs/promises';
import type { LeaseRecord } from '../../../src/store/types.ts';
import { makeTempDir } from '../../helpers/certs.ts';
import { readFile } from 'node:fs/promises';
import { cleanup } from '../../helpers/cleanup.ts';
import { createMetricsRegistry, probeRoutes, Readiness } from '../../../src/telemetry/metrics/index.ts';

const TD = 'admin.test';
const ADMIN = `spiffe://${TD}/ns/ops/sa/admin`;
const ORDERS = `spiffe://${TD}/ns/shop/sa/orders`;
const STRANGER = `spiffe://${TD}/ns/shop/sa/stranger`;
const PASSWORD = 'Pw-very-secret-0123456789';
const TOKEN_ORDERS = 'token-for-orders';
const TOKEN_STRANGER = 'token-for-stranger';

function identityOf(spiffeId: string, authMethod: Identity['authMethod']): Identity {
  const [, ns = null, sa = null] = /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(spiffeId) ?? [];
  return {
    spiffeId,
    trustDomain: TD,
    namespace: ns,
    serviceAccount: sa,
    principal: spiffeId.slice('spiffe://'.length),
    authMethod,
    certificate: { serialNumber: '', notBefore: '', notAfter: '', fingerprint256: '' },
  };
}

const POLICY_TEXT = `
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: allow }
spec:
  action: ALLOW
  rules:
    - id: shop
      from: [{ source: { namespaces: ["shop"] } }]
      to: [{ mariadb: { databases: ["shop"], role: "shop_rw", direct: true } }]
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: deny }
spec:
  action: DENY
  rules:
    - id: strangers
      from: [{ source: { principals: ["${TD}/ns/shop/sa/stranger"] } }]
`;
const policy = loadPolicyDocuments([{ name: 'policy.yaml', text: POLICY_TEXT }]);

describe('admin API', () => {
  let policyDir: string;
  let inForce: SwappablePolicy;
  const reloads: { outcome?: string; trigger: string; identity?: Identity | null; policyVersion: string | null; error: { code: string } | null }[] = [];
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let api: AdminApi;
  let ca: Buffer;
  const certs: Record<string, { cert: Buffer; key: Buffer }> = {};
  let records: LeaseRecord[];
  let issueCalls: { principal: string; role: string; database: string | null; ttlMs: number | undefined }[];
  let revokeCalls: { selector: RevokeSelector; reason: string }[];
  let rotations: number;
  let failNextIssue: Error | null;
  const logged: string[] = [];
  let events: CredentialFacts[];
  /** The identity the fake rate limiter refuses, when set. */
  let rateLimited: string | null;
  let auditRefusal: { code: string; message: string } | null = null;

  function record(id: string, principal: string, state: LeaseRecord['state']): LeaseRecord {
    return {
      id, purpose: 'issued', principal, role: 'shop_rw', database: 'shop', username: `mg-${id}`, userHost: '%', state,
      createdAt: 0, expiresAt: 60_000, maxExpiresAt: 60_000, updatedAt: 0, revokedAt: state === 'revoked' ? 1000 : null, revokeReason: state === 'revoked' ? 'test' : null, owner: 'test',
    };
  }

  const leases: LeaseOperations = {
    async issue(identity, role, database, ttlMs) {
      if (failNextIssue !== null) {
        const error = failNextIssue;
        failNextIssue = null;
        throw error;
      }
      if (ttlMs !== undefined && ttlMs > 3_600_000) throw mgError('MG_LEASE_TTL_TOO_LONG', 'a TTL above 1h; ask for less');
      issueCalls.push({ principal: identity.spiffeId, role, database, ttlMs });
      const lease = record(`lease_${issueCalls.length}`, identity.spiffeId, 'active');
      records.push(lease);
      return { lease, username: lease.username, password: PASSWORD, expiresAt: Date.parse('2030-01-01T00:00:00Z') };
    },
    async list(filter) {
      return records.filter((r) => filter?.states === undefined || filter.states.includes(r.state));
    },
    async revoke(selector, reason) {
      revokeCalls.push({ selector, reason });
      if (selector.leaseId !== undefined && !records.some((r) => r.id === selector.leaseId)) throw mgError('MG_LEASE_NOT_FOUND', `no lease ${selector.leaseId}`);
      const hit = records.filter((r) => r.state === 'active' && (selector.leaseId === undefined || r.id === selector.leaseId) && (selector.principal === undefined || r.principal === selector.principal));
      records = records.map((r) => (hit.includes(r) ? { ...r, state: 'revoked' as const } : r));
      return hit.map((r) => ({ ...r, state: 'revoked' as const }));
    },
  };

  before(async () => {
    tmp = await makeTempDir('meshgate-admin-api-');
    const caDir = join(tmp.dir, 'ca');
    await initCa({ dir: caDir, trustDomain: TD });
    const server = await issueServerCert({ caDir, outDir: join(tmp.dir, 'server'), ttlSeconds: 3600 });
    for (const [name, id] of Object.entries({ admin: ADMIN, orders: ORDERS })) {
      const issued = await issueSvid({ caDir, spiffeId: id, outDir: join(tmp.dir, 'clients'), name, ttlSeconds: 3600 });
      certs[name] = { cert: await readFile(issued.certPath), key: await readFile(issued.keyPath) };
    }
    // A certificate for the admin's SPIFFE ID from a CA meshgate does not trust.
    const otherCa = join(tmp.dir, 'other-ca');
    await initCa({ dir: otherCa, trustDomain: TD });
    const forged = await issueSvid({ caDir: otherCa, spiffeId: ADMIN, outDir: join(tmp.dir, 'forged'), name: 'admin', ttlSeconds: 3600 });
    certs['forged'] = { cert: await readFile(forged.certPath), key: await readFile(forged.keyPath) };
    ca = await readFile(join(caDir, 'bundle.pem'));
    const metrics = createMetricsRegistry({ version: '0.0.0-test', audit: {}, policy: () => ({ version: 'test', rules: 2 }) }, { processMetrics: false });
    const readiness = new Readiness({ policyLoaded: () => true, auditRefusal: () => auditRefusal, upstreamChecks: () => [], upstreamFreshMs: 1000 });
    readiness.serving();
    const probes = probeRoutes(metrics, readiness);
    policyDir = join(tmp.dir, 'policy');
    await mkdir(policyDir);
    await writeFile(join(policyDir, 'policy.yaml'), POLICY_TEXT);
    inForce = new SwappablePolicy(await loadPolicyDir(policyDir));
    const reloader = new PolicyReloader({ policy: inForce, candidate: { source: policyDir, load: () => loadPolicyDir(policyDir) }, audit: { policyChange: (facts) => reloads.push(facts) }, log: silentLogger });
    api = await startAdminApi({
      reloadPolicy: (by) => reloader.reload({ trigger: 'admin', identity: by }),
      probes: { ready: probes['/readyz']!, metrics: probes['/metrics']! },
      host: '127.0.0.1',
      port: 0,
      tls: { cert: server.certPath, key: server.keyPath, bundles: [join(caDir, 'bundle.pem')] },
      trustDomains: [TD],
      admins: [ADMIN],
      leases,
      policy: () => inForce.current(),
      verifyToken: async (token) => {
        if (token === TOKEN_ORDERS) return identityOf(ORDERS, 'jwt');
        if (token === TOKEN_STRANGER) return identityOf(STRANGER, 'jwt');
        throw mgError('MG_TOKEN_INVALID', "the token's signature does not verify");
      },
      upstream: { host: 'db.internal', port: 3306 },
      rotateAdmin: async () => {
        rotations++;
      },
      adminAccount: { user: 'meshgate_admin', file: '/etc/meshgate/admin-password' },
      issueRate: { perMinute: 2, take: (key) => (key === rateLimited ? { allowed: false, retryAfterMs: 12_500 } : { allowed: true }) },
      audit: { credential: (facts) => events.push(facts) },
      log: {
        info: (message, fields) => logged.push(JSON.stringify({ message, ...fields })),
        warn: (message, fields) => logged.push(JSON.stringify({ message, ...fields })),
      },
    });
  });
  after(async () => {
    await cleanup(
      () => api?.close(),
      () => tmp?.cleanup(),
    );
  });
  beforeEach(() => {
    records = [record('lease_old', ORDERS, 'revoked')];
    issueCalls = [];
    revokeCalls = [];
    rotations = 0;
    failNextIssue = null;
    events = [];
    rateLimited = null;
  });

  interface Answer {
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: any;
  }

  function call(method: string, path: string, options: { body?: string | object; headers?: Record<string, string>; as?: string } = {}): Promise<Answer> {
    const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    const client = options.as === undefined ? {} : certs[options.as]!;
    return new Promise((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port: api.port, method, path, ca, ...client, agent: false, headers: { 'content-type': 'application/json', ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }), ...options.headers } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const json = String(res.headers['content-type']).startsWith('application/json');
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text === '' ? null : json ? JSON.parse(text) : text });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it('answers /healthz', async () => {
    const answer = await call('GET', '/healthz');
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { ok: true });
  });

  it('answers /readyz without a client certificate: 503 naming what is not ready', async () => {
    assert.deepEqual((await call('GET', '/readyz')).body, { ready: true });
    auditRefusal = { code: 'MG_AUDIT_UNAVAILABLE', message: 'disk full' };
    try {
      const answer = await call('GET', '/readyz');
      assert.equal(answer.status, 503);
      assert.deepEqual(answer.body, { ready: false, notReady: { audit: 'MG_AUDIT_UNAVAILABLE: disk full' } });
    } finally {
      auditRefusal = null;
    }
  });

  it('serves /metrics to a verified client certificate only', async () => {
    const anonymous = await call('GET', '/metrics');
    assert.equal(anonymous.status, 401);
    const forged = await call('GET', '/metrics', { as: 'forged' });
    assert.equal(forged.status, 401);
    const scraped = await call('GET', '/metrics', { as: 'orders' });
    assert.equal(scraped.status, 200);
    assert.match(String(scraped.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.match(scraped.body as string, /^meshgate_build_info\{version="0\.0\.0-test",node_version="v[\d.]+"\} 1$/m);
  });

  it('issues a credential to a bearer token that policy allows, with the role policy names', async () => {
    const answer = await call('POST', '/v1/creds', { body: { database: 'shop', ttl: '10m' }, headers: { authorization: `Bearer ${TOKEN_ORDERS}` } });
    assert.equal(answer.status, 201);
    assert.equal(answer.headers['cache-control'], 'no-store');
    assert.deepEqual(answer.body, {
      host: 'db.internal', port: 3306, username: 'mg-lease_1', password: PASSWORD, database: 'shop', leaseId: 'lease_1',
      expiresAt: '2030-01-01T00:00:00.000Z', principal: ORDERS, role: 'shop_rw', ruleId: 'allow/shop',
    });
    assert.deepEqual(issueCalls, [{ principal: ORDERS, role: 'shop_rw', database: 'shop', ttlMs: 600_000 }]);
  });

  it('takes the token in the body too, a TTL in seconds, and refuses two different tokens', async () => {
    assert.equal((await call('POST', '/v1/creds', { body: { token: TOKEN_ORDERS, database: 'shop', ttl: 90 } })).status, 201);
    assert.equal(issueCalls[0]!.ttlMs, 90_000);
    const both = await call('POST', '/v1/creds', { body: { token: TOKEN_ORDERS, database: 'shop' }, headers: { authorization: `Bearer ${TOKEN_STRANGER}` } });
    assert.equal(both.status, 400);
    assert.equal(both.body.error.code, 'MG_USAGE');
  });

  it('uses a verified client certificate as the identity when no token is sent', async () => {
    const answer = await call('POST', '/v1/creds', { body: { database: 'shop' }, as: 'orders' });
    assert.equal(answer.status, 201);
    assert.equal(answer.body.principal, ORDERS);
    assert.equal(issueCalls[0]!.ttlMs, undefined, 'the configured default TTL applies');
  });

  it('401 for a bad or missing token, 403 naming the rule for a denied identity, and nothing issued', async () => {
    const bad = await call('POST', '/v1/creds', { body: { database: 'shop' }, headers: { authorization: 'Bearer nope' } });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.error.code, 'MG_TOKEN_INVALID');
    const none = await call('POST', '/v1/creds', { body: { database: 'shop' } });
    assert.equal(none.status, 401);
    assert.match(none.body.error.message, /Authorization: Bearer/);
    const denied = await call('POST', '/v1/creds', { body: { database: 'shop', token: TOKEN_STRANGER } });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error.code, 'MG_POLICY_DENIED');
    assert.match(denied.body.error.message, /deny\/strangers/);
    assert.deepEqual(issueCalls, []);
  });

  it('400 for bodies that are not what the route takes; 413 past the size limit', async () => {
    const auth = { authorization: `Bearer ${TOKEN_ORDERS}` };
    for (const body of ['{not json', '[1]', JSON.stringify({ database: 5 }), JSON.stringify({}), JSON.stringify({ database: 'shop', ttl: 'forever' })]) {
      const answer = await call('POST', '/v1/creds', { body, headers: auth });
      assert.equal(answer.status, 400, body);
      assert.equal(answer.body.error.code, 'MG_USAGE', body);
    }
    const big = await call('POST', '/v1/creds', { body: { database: 'shop', pad: 'x'.repeat(MAX_ADMIN_BODY_BYTES) }, headers: auth });
    assert.equal(big.status, 413);
    assert.equal(big.body.error.code, 'MG_PACKET_TOO_LARGE');
    const tooLong = await call('POST', '/v1/creds', { body: { database: 'shop', ttl: '2h' }, headers: auth });
    assert.equal(tooLong.status, 400);
    assert.equal(tooLong.body.error.code, 'MG_LEASE_TTL_TOO_LONG');
    assert.deepEqual(issueCalls, []);
  });

  it('hides the details of server-side failures from the caller, and logs them', async () => {
    failNextIssue = new Error('undefined is not a function at 10.0.0.7');
    const answer = await call('POST', '/v1/creds', { body: { database: 'shop', token: TOKEN_ORDERS } });
    assert.equal(answer.status, 500);
    assert.equal(answer.body.error.code, 'MG_INTERNAL');
    assert.doesNotMatch(JSON.stringify(answer.body), /10\.0\.0\.7|undefined/);
    assert.match(logged.at(-1)!, /10\.0\.0\.7/, 'the log has the cause');
    failNextIssue = mgError('MG_STORE_UNAVAILABLE', 'cannot write /var/lib/meshgate/state (EIO)');
    const unavailable = await call('POST', '/v1/creds', { body: { database: 'shop', token: TOKEN_ORDERS } });
    assert.equal(unavailable.status, 503);
    assert.equal(unavailable.body.error.code, 'MG_STORE_UNAVAILABLE');
    assert.doesNotMatch(unavailable.body.error.message, /var\/lib/);
  });

  it('admin routes: 401 without a client certificate, 401 for an untrusted one, 403 for a non-admin', async () => {
    for (const [method, path] of [['GET', '/v1/leases'], ['POST', '/v1/leases/revoke'], ['POST', '/v1/admin/rotate-root']] as const) {
      const anonymous = await call(method, path, { body: { leaseId: 'lease_old' } });
      assert.equal(anonymous.status, 401, path);
      assert.equal(anonymous.body.error.code, 'MG_CLIENT_CERT_MISSING');
      const forged = await call(method, path, { body: { leaseId: 'lease_old' }, as: 'forged' });
      assert.equal(forged.status, 401, path);
      assert.equal(forged.body.error.code, 'MG_CLIENT_CERT_UNTRUSTED');
      const workload = await call(method, path, { body: { leaseId: 'lease_old' }, as: 'orders' });
      assert.equal(workload.status, 403, path);
      assert.equal(workload.body.error.code, 'MG_ADMIN_UNAUTHORIZED');
      assert.match(workload.body.error.message, /admin\.principals/);
    }
    // A bearer token is no admin credential.
    const token = await call('GET', '/v1/leases', { headers: { authorization: `Bearer ${TOKEN_ORDERS}` } });
    assert.equal(token.status, 401);
    assert.deepEqual(revokeCalls, []);
    assert.equal(rotations, 0);
  });

  it('an admin lists live leases (all=1 adds revoked ones), without any password', async () => {
    await call('POST', '/v1/creds', { body: { database: 'shop', token: TOKEN_ORDERS } });
    const live = await call('GET', '/v1/leases', { as: 'admin' });
    assert.equal(live.status, 200);
    assert.deepEqual(live.body.leases.map((l: { id: string; state: string }) => [l.id, l.state]), [['lease_1', 'active']]);
    assert.equal(live.body.leases[0].expiresAt, '1970-01-01T00:01:00.000Z');
    assert.doesNotMatch(JSON.stringify(live.body), /password|Pw-/i);
    const all = await call('GET', '/v1/leases?all=1', { as: 'admin' });
    assert.deepEqual(all.body.leases.map((l: { id: string }) => l.id).sort(), ['lease_1', 'lease_old']);
  });

  it('an admin revokes by lease, by identity (either form); an unknown lease is 404', async () => {
    await call('POST', '/v1/creds', { body: { database: 'shop', token: TOKEN_ORDERS } });
    await call('POST', '/v1/creds', { body: { database: 'shop', token: TOKEN_ORDERS } });
    const one = await call('POST', '/v1/leases/revoke', { body: { leaseId: 'lease_1', reason: 'leaked in a log' }, as: 'admin' });
    assert.equal(one.status, 200);
    assert.deepEqual(one.body.revoked.map((l: { id: string }) => l.id), ['lease_1']);
    assert.equal(revokeCalls[0]!.reason, 'leaked in a log');
    const byIdentity = await call('POST', '/v1/leases/revoke', { body: { principal: ORDERS.slice('spiffe://'.length) }, as: 'admin' });
    assert.deepEqual(byIdentity.body.revoked.map((l: { id: string }) => l.id), ['lease_2']);
    assert.deepEqual(revokeCalls[1]!.selector, { principal: ORDERS });
    assert.match(revokeCalls[1]!.reason, new RegExp(`revoked by ${ADMIN}`));
    const again = await call('POST', '/v1/leases/revoke', { body: { leaseId: 'lease_1' }, as: 'admin' });
    assert.deepEqual(again.body, { revoked: [] });
    const unknown = await call('POST', '/v1/leases/revoke', { body: { leaseId: 'lease_nope' }, as: 'admin' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'MG_LEASE_NOT_FOUND');
    for (const body of [{}, { leaseId: 'lease_1', role: 'x' }]) {
      const wrong = await call('POST', '/v1/leases/revoke', { body, as: 'admin' });
      assert.equal(wrong.status, 400);
    }
  });

  it('an admin rotates the admin credential; the answer names the user and the file, nothing more', async () => {
    const answer = await call('POST', '/v1/admin/rotate-root', { as: 'admin' });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { rotated: true, user: 'meshgate_admin', file: '/etc/meshgate/admin-password' });
    assert.equal(rotations, 1);
  });

  it('a caller over its issue rate gets 429 MG_DIRECT_CREDS_LIMIT with Retry-After, and nothing is issued', async () => {
    rateLimited = ORDERS;
    const answer = await call('POST', '/v1/creds', { body: { database: 'shop', token: TOKEN_ORDERS } });
    assert.equal(answer.status, 429);
    assert.equal(answer.headers['retry-after'], '13');
    assert.equal(answer.body.error.code, 'MG_DIRECT_CREDS_LIMIT');
    assert.equal(
      answer.body.error.message,
      `${ORDERS} asked for direct credentials more often than upstream.credentials.issuedPerMinute (2 per minute per identity) allows; retry in 13 s, or raise upstream.credentials.issuedPerMinute`,
    );
    assert.deepEqual(issueCalls, []);
    assert.deepEqual(events.map((e) => [e.action, e.decision, e.rule, e.role, e.error?.code]), [['issue', 'allow', 'allow/shop', 'shop_rw', 'MG_DIRECT_CREDS_LIMIT']]);
  });

  it('every credential request is one audit report, whoever asks and however it ends', async () => {
    await call('POST', '/v1/creds', { body: { database: 'shop' } });
    await call('POST', '/v1/creds', { body: { database: 'shop', ttl: '10m' }, headers: { authorization: `Bearer ${TOKEN_ORDERS}` } });
    failNextIssue = mgError('MG_UPSTREAM_UNAVAILABLE', 'MariaDB is down');
    await call('POST', '/v1/creds', { body: { database: 'shop' }, as: 'orders' });
    await call('POST', '/v1/leases/revoke', { body: { leaseId: 'lease_old' }, as: 'admin' });
    await call('POST', '/v1/admin/rotate-root', { as: 'forged' });
    await call('GET', '/v1/leases', { as: 'admin' });
    assert.deepEqual(
      events.map((e) => [e.action, e.identity?.spiffeId ?? null, e.identity?.authMethod ?? null, e.decision, e.rule, e.lease?.id ?? e.leaseId ?? null, e.error?.code ?? null]),
      [
        ['issue', null, null, 'deny', null, null, 'MG_TOKEN_INVALID'],
        ['issue', ORDERS, 'jwt', 'allow', 'allow/shop', 'lease_1', null],
        ['issue', ORDERS, 'mtls', 'allow', 'allow/shop', null, 'MG_UPSTREAM_UNAVAILABLE'],
        ['revoke', ADMIN, 'mtls', 'allow', 'admin.principals', 'lease_old', null],
        ['rotate', null, null, 'deny', null, null, 'MG_CLIENT_CERT_UNTRUSTED'],
      ],
    );
    assert.equal(events[1]!.ttlMs, 600_000);
    assert.match(events[3]!.reason, /^nothing to revoke: no active lease matches lease lease_old$/);
    assert.equal(events[4]!.account, 'meshgate_admin');
    assert.ok(events.every((e) => e.peer?.address === '127.0.0.1' && typeof e.peer.port === 'number'));
    assert.doesNotMatch(JSON.stringify(events), new RegExp(`${PASSWORD}|${TOKEN_ORDERS}`));
  });

  it('404 for unknown routes, 405 with Allow for the wrong method', async () => {
    const missing = await call('GET', '/v1/nope');
    assert.equal(missing.status, 404);
    assert.match(missing.body.error.message, /POST \/v1\/creds/);
    const wrong = await call('GET', '/v1/creds');
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers['allow'], 'POST');
  });

  it('an admin reads the policy version in force and reloads it: 200 with the new version, 422 with the reason for a broken one', async () => {
    const before = inForce.current().version;
    const shown = await call('GET', '/v1/policy', { as: 'admin' });
    assert.equal(shown.status, 200);
    assert.deepEqual(shown.body, { version: before, rules: 2, sources: [join(policyDir, 'policy.yaml')] });
    assert.equal((await call('GET', '/v1/policy', { as: 'orders' })).status, 403);
    assert.equal((await call('POST', '/v1/policy/reload', { as: 'orders', body: {} })).status, 403, 'only admins reload');
    assert.equal(reloads.length, 0);
    try {
      await writeFile(join(policyDir, 'policy.yaml'), POLICY_TEXT.replace('shop_rw', 'shop_ro'));
      const done = await call('POST', '/v1/policy/reload', { as: 'admin', body: {} });
      assert.equal(done.status, 200);
      assert.equal(done.body.outcome, 'completed');
      assert.equal(done.body.previousVersion, before);
      assert.equal(done.body.version, inForce.current().version);
      assert.equal(reloads[0]?.identity?.spiffeId, ADMIN);
      const unchanged = await call('POST', '/v1/policy/reload', { as: 'admin' });
      assert.equal(unchanged.body.outcome, 'unchanged');
      await writeFile(join(policyDir, 'policy.yaml'), POLICY_TEXT.replace('action: DENY', 'action: deny'));
      const refused = await call('POST', '/v1/policy/reload', { as: 'admin' });
      assert.equal(refused.status, 422);
      assert.equal(refused.body.error.code, 'MG_POLICY_INVALID');
      assert.match(refused.body.error.message, /spec\.action: expected "ALLOW", "DENY" or "AUDIT", got the string "deny"/);
      assert.equal(inForce.current().version, done.body.version, 'the last good version stays');
    } finally {
      await writeFile(join(policyDir, 'policy.yaml'), POLICY_TEXT);
      await call('POST', '/v1/policy/reload', { as: 'admin' });
    }
    assert.equal(inForce.current().version, before);
  });

  it('never logs a password or a token', () => {
    const text = logged.join('\n');
    assert.ok(text.includes('issued a credential'));
    assert.doesNotMatch(text, new RegExp(`${PASSWORD}|${TOKEN_ORDERS}|${TOKEN_STRANGER}`));
  });

  it('refuses a port that is taken, with MG_CONFIG_INVALID', async () => {
    await assert.rejects(
      startAdminApi({
        host: '127.0.0.1', port: api.port, tls: { cert: join(tmp.dir, 'server', 'server.crt'), key: join(tmp.dir, 'server', 'server.key'), bundles: [join(tmp.dir, 'ca', 'bundle.pem')] },
        trustDomains: [TD], admins: [], leases, policy, upstream: { host: 'x', port: 1 },
      }),
      (e: Error & { code?: string }) => e.code === 'MG_CONFIG_INVALID' && /admin\.port/.test(e.message),
    );
  });
});
