/**
 * Direct credentials through the real admin API (HTTPS, client certificates) against real
 * MariaDB accounts: handed out only where a rule says `direct: true`, capped per identity
 * (live leases and issue rate) with a clear 429, and every issue, revoke and rotate on the
 * audit record with who asked, under which rule, for which account (never a password).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { runCli } from '../../../src/cli/main.ts';
import { captureIO } from '../../helpers/cli.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { accountsWithPrefix, existingAccounts, MARIADB, RUN_ID, startHarness, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

// Namespaces unique to this run, so the MariaDB account names (mg-<ns>.<sa>-…) are ours alone.
const SHOP = `shop-${RUN_ID}`;
const CI = `ci-${RUN_ID}`;
const STAGING = `staging-${RUN_ID}`;
const TIGHT = `tight-${RUN_ID}`;
const WORKLOADS = {
  orders: `spiffe://${TRUST_DOMAIN}/ns/${SHOP}/sa/orders`,
  analytics: `spiffe://${TRUST_DOMAIN}/ns/${SHOP}/sa/analytics`,
  staging: `spiffe://${TRUST_DOMAIN}/ns/${STAGING}/sa/deploy`,
  burst: `spiffe://${TRUST_DOMAIN}/ns/${CI}/sa/burst`,
  ops: `spiffe://${TRUST_DOMAIN}/ns/ops/sa/admin`,
  tight: `spiffe://${TRUST_DOMAIN}/ns/${TIGHT}/sa/job`,
} as const;

const HEAD = 'apiVersion: meshgate.dev/v1alpha1\nkind: AccessPolicy\n';
const POLICY = `${HEAD}metadata: { name: writers }
spec:
  action: ALLOW
  rules:
    - id: orders
      from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/${SHOP}/sa/orders"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{rw}", direct: true } }]
---
${HEAD}metadata: { name: readers }
spec:
  action: ALLOW
  rules:
    - id: analytics
      from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/${SHOP}/sa/analytics"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{ro}" } }]
---
${HEAD}metadata: { name: ci }
spec:
  action: ALLOW
  rules:
    - id: direct
      from: [{ source: { namespaces: ["${CI}", "${STAGING}"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{ro}", direct: true } }]
---
${HEAD}metadata: { name: tight }
spec:
  action: ALLOW
  rules:
    - id: job
      serviceClass: tight
      from: [{ source: { namespaces: ["${TIGHT}"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{ro}", direct: true } }]
---
${HEAD}metadata: { name: deny-staging }
spec:
  action: DENY
  rules:
    - from: [{ source: { namespaces: ["${STAGING}"] } }]
`;

const MAX_LIVE = 3;
const PER_MINUTE = 8;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

type CredentialEvent = Record<string, any> & { type: 'credential' };

describe('direct credentials: policy, limits and audit', { skip: missing }, () => {
  let h: Harness;
  const opened: mysql.Connection[] = [];
  /** Every password handed out here; none may appear in the audit file. */
  const passwords: string[] = [];

  function api(method: string, path: string, as: keyof typeof WORKLOADS, body?: object): Promise<Answer> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const pems = h.ssl(as);
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: h.meshgate.adminPort!,
          method,
          path,
          ca: pems.ca,
          cert: pems.cert,
          key: pems.key,
          agent: false,
          headers: text === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const answer = { status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
            if (typeof answer.body?.password === 'string') passwords.push(answer.body.password);
            resolve(answer);
          });
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  }
  const issue = (as: keyof typeof WORKLOADS, body: object = {}) => api('POST', '/v1/creds', as, { database: h.database, ...body });
  const direct = async (user: string, password: string) => {
    const conn = await mysql.createConnection({ host: MARIADB.host, port: MARIADB.port, user, password, database: h.database });
    conn.on('error', () => undefined);
    opened.push(conn);
    return conn;
  };
  const leasesOf = (principal: string, states: ('creating' | 'active' | 'revoking' | 'revoked')[] = ['creating', 'active', 'revoking']) =>
    h.meshgate.credentials!.leases.list({ principal, states });
  const credentialEvents = async (): Promise<CredentialEvent[]> => (await h.readAudit()).filter((e): e is CredentialEvent => e['type'] === 'credential');
  const slugOf = (spiffeId: string) => {
    const [, ns, sa] = /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(spiffeId)!;
    return `mg-${ns}.${sa}-`;
  };

  before(async () => {
    h = await startHarness({
      name: 'directcreds',
      workloads: WORKLOADS,
      credentials: 'dynamic',
      policy: POLICY,
      config: (c) => {
        c.upstream.credentials = { ...c.upstream.credentials!, issuedMaxLive: MAX_LIVE, issuedPerMinute: PER_MINUTE, sweepInterval: '1s' };
        c.admin = { host: '127.0.0.1', port: 0, principals: [WORKLOADS.ops] };
        // Two logins an hour for each identity of the tight class: credentials issued count too.
        c.throttle = { classes: { default: {}, tight: { perIdentity: { logins: { perSecond: 1 / 3600, burst: 2 } } } } };
      },
    });
  });

  after(async () => {
    for (const conn of opened) conn.destroy();
    const ours = new Set((await h?.meshgate.credentials?.leases.list({}))?.map((l) => l.username) ?? []);
    await cleanup(
      async () => {
        if (h === undefined) return;
        // Issued leases outlive meshgate by design: end what is still live, then stop.
        for (const principal of Object.values(WORKLOADS)) await h.meshgate.credentials?.leases.revoke({ principal }, 'test cleanup').catch(() => undefined);
      },
      () => h?.stop(),
    );
    assert.deepEqual(await existingAccounts(ours), [], 'no MariaDB account made here is left');
  });

  it('the attack: a workload whose rule allows sessions only is refused direct credentials, and no account is made', async () => {
    const denied = await issue('analytics');
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error.code, 'MG_POLICY_DENIED');
    assert.match(denied.body.error.message, /a rule must allow direct access/);
    assert.match(denied.body.error.message, /to\.mariadb\.direct: true/);
    assert.match(denied.body.error.message, /rule readers\/analytics allows this identity sessions through meshgate only/);
    assert.deepEqual(await leasesOf(WORKLOADS.analytics, ['creating', 'active', 'revoking', 'revoked']), [], 'not even a lease record');
    assert.deepEqual(await accountsWithPrefix(slugOf(WORKLOADS.analytics)), []);
    // Its sessions through meshgate go on as before.
    const session = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'analytics', database: h.database, ssl: h.ssl('analytics') });
    opened.push(session);
    const [rows] = await session.query<mysql.RowDataPacket[]>('SELECT CURRENT_ROLE() AS r');
    assert.equal(rows[0]!['r'], h.roles.ro);
    await session.end();
  });

  it('a DENY rule wins over direct: true', async () => {
    const denied = await issue('staging');
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error.code, 'MG_POLICY_DENIED');
    assert.match(denied.body.error.message, /^denied by rule deny-staging\/0/);
    assert.deepEqual(await leasesOf(WORKLOADS.staging, ['creating', 'active', 'revoking', 'revoked']), []);
  });

  let ordersLease: { id: string; username: string; password: string; conn: mysql.Connection };

  it('a rule with direct: true issues an account that works directly, and the issue is on the audit record', async () => {
    const answer = await issue('orders', { ttl: '5m' });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.deepEqual([answer.body.role, answer.body.ruleId], [h.roles.rw, 'writers/orders']);
    const conn = await direct(answer.body.username, answer.body.password);
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_ROLE() AS r');
    assert.equal(rows[0]!['r'], h.roles.rw);
    ordersLease = { id: answer.body.leaseId, username: answer.body.username, password: answer.body.password, conn };

    const events = await credentialEvents();
    const issued = events.filter((e) => e['action'] === 'issue' && e['leaseId'] === ordersLease.id);
    assert.equal(issued.length, 1);
    const event = issued[0]!;
    assert.equal(event['outcome'], 'completed');
    assert.equal(event['credential'], 'direct');
    assert.equal(event['identity'].spiffeId, WORKLOADS.orders);
    assert.equal(event['identity'].authMethod, 'mtls');
    assert.equal(event['principal'], WORKLOADS.orders);
    assert.deepEqual([event['decision'], event['rule'], event['role'], event['database']], ['allow', 'writers/orders', h.roles.rw, h.database]);
    assert.equal(event['account'], ordersLease.username);
    assert.equal(event['ttlSeconds'], 300);
    assert.equal(event['expiresAt'], answer.body.expiresAt);
    assert.equal(event['error'], null);
    assert.equal(typeof event['peer'].address, 'string');
    assert.ok(!JSON.stringify(event).includes(ordersLease.password));

    // The refusals of the two tests before are on the record too, with the deciding rule.
    const analytics = events.filter((e) => e['identity']?.spiffeId === WORKLOADS.analytics);
    assert.deepEqual(analytics.map((e) => [e['action'], e['outcome'], e['decision'], e['rule'], e['leaseId'], e['error']?.code]), [['issue', 'refused', 'deny', null, null, 'MG_POLICY_DENIED']]);
    const staging = events.filter((e) => e['identity']?.spiffeId === WORKLOADS.staging);
    assert.deepEqual(staging.map((e) => [e['outcome'], e['rule']]), [['refused', 'deny-staging/0']]);
  });

  it('200 requests at once: 3 accounts, the rest refused with 429 MG_DIRECT_CREDS_LIMIT naming the limit, with Retry-After', async () => {
    const answers = await Promise.all(Array.from({ length: 200 }, () => issue('burst')));
    const created = answers.filter((a) => a.status === 201);
    const refused = answers.filter((a) => a.status !== 201);
    assert.equal(created.length, MAX_LIVE, JSON.stringify(refused.find((a) => a.status !== 429)?.body ?? null));
    for (const answer of refused) {
      assert.equal(answer.status, 429, JSON.stringify(answer.body));
      assert.equal(answer.body.error.code, 'MG_DIRECT_CREDS_LIMIT');
      const retry = Number(answer.headers['retry-after']);
      assert.ok(Number.isInteger(retry) && retry >= 1, `Retry-After: ${String(answer.headers['retry-after'])}`);
    }
    const byLive = refused.filter((a) => /issuedMaxLive/.test(a.body.error.message));
    const byRate = refused.filter((a) => /issuedPerMinute/.test(a.body.error.message));
    assert.equal(byLive.length + byRate.length, refused.length);
    // At least the rate's burst beyond the cap reached the cap; the rest never got that far.
    assert.ok(byLive.length >= PER_MINUTE - MAX_LIVE, `cap refusals: ${byLive.length}`);
    assert.ok(byRate.length >= 200 - 2 * PER_MINUTE, `rate refusals: ${byRate.length}`);
    assert.match(byLive[0]!.body.error.message, new RegExp(`${WORKLOADS.burst} holds ${MAX_LIVE} live direct credentials, the most upstream\\.credentials\\.issuedMaxLive allows per identity; .*creds revoke.*raise upstream\\.credentials\\.issuedMaxLive`));
    assert.match(byRate[0]!.body.error.message, new RegExp(`${WORKLOADS.burst} asked for direct credentials more often than upstream\\.credentials\\.issuedPerMinute \\(${PER_MINUTE} per minute per identity\\) allows; retry in \\d+ s, or raise upstream\\.credentials\\.issuedPerMinute`));

    // Bounded in the store and in MariaDB alike, and each account works.
    assert.equal((await leasesOf(WORKLOADS.burst)).length, MAX_LIVE);
    assert.deepEqual(await accountsWithPrefix(slugOf(WORKLOADS.burst)), created.map((a) => a.body.username).sort());
    for (const answer of created) await (await direct(answer.body.username, answer.body.password)).query('SELECT 1');

    // Every attempt is one event: 3 issued, the rest refused with the rule that allowed them and the code.
    const events = (await credentialEvents()).filter((e) => e['identity']?.spiffeId === WORKLOADS.burst);
    assert.equal(events.length, 200);
    assert.equal(events.filter((e) => e['outcome'] === 'completed').length, MAX_LIVE);
    const refusedEvents = events.filter((e) => e['outcome'] === 'refused');
    assert.equal(refusedEvents.length, 200 - MAX_LIVE);
    assert.ok(refusedEvents.every((e) => e['rule'] === 'ci/direct' && e['error'].code === 'MG_DIRECT_CREDS_LIMIT' && e['leaseId'] === null));
  });

  it('the issue rate holds after a revoke frees a slot, per identity; the CLI prints the same refusal', async () => {
    const [first] = await leasesOf(WORKLOADS.burst);
    const revoked = await api('POST', '/v1/leases/revoke', 'ops', { leaseId: first!.id });
    assert.equal(revoked.status, 200);
    assert.equal((await leasesOf(WORKLOADS.burst)).length, MAX_LIVE - 1);
    const again = await issue('burst');
    assert.equal(again.status, 429);
    assert.match(again.body.error.message, /issuedPerMinute/);
    assert.ok(Number(again.headers['retry-after']) <= Math.ceil(60 / PER_MINUTE));
    const io = captureIO();
    const pems = h.clients['burst']!;
    const code = await runCli(['creds', 'issue', '--server', `https://127.0.0.1:${h.meshgate.adminPort}`, '--ca', pems.ca, '--cert', pems.cert, '--key', pems.key, '--database', h.database], io);
    assert.equal(code, 1);
    assert.match(io.stderr.join('\n'), /\[MG_DIRECT_CREDS_LIMIT\] .*issuedPerMinute/);
    // Another identity's bucket is its own.
    const orders = await issue('orders', { ttl: '5m' });
    assert.equal(orders.status, 201);
    await api('POST', '/v1/leases/revoke', 'ops', { leaseId: orders.body.leaseId });
  });

  it('only admins revoke: a workload is refused and recorded; an admin revoke drops the account, kills its connection, and is recorded', async () => {
    const refused = await api('POST', '/v1/leases/revoke', 'analytics', { leaseId: ordersLease.id });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'MG_ADMIN_UNAUTHORIZED');
    const own = await api('POST', '/v1/leases/revoke', 'orders', { leaseId: ordersLease.id });
    assert.equal(own.status, 403, 'not even its holder');
    const listed = await api('GET', '/v1/leases', 'orders');
    assert.equal(listed.status, 403);
    assert.deepEqual(await existingAccounts([ordersLease.username]), [ordersLease.username]);

    const revoked = await api('POST', '/v1/leases/revoke', 'ops', { leaseId: ordersLease.id, reason: 'pipeline done' });
    assert.equal(revoked.status, 200);
    assert.deepEqual(await existingAccounts([ordersLease.username]), [], 'the account is dropped');
    await assert.rejects(ordersLease.conn.query('SELECT 1'), 'its open connection was killed');
    await assert.rejects(direct(ordersLease.username, ordersLease.password), /Access denied/);

    const events = (await credentialEvents()).filter((e) => e['action'] === 'revoke');
    const byAnalytics = events.filter((e) => e['identity']?.spiffeId === WORKLOADS.analytics);
    assert.deepEqual(byAnalytics.map((e) => [e['outcome'], e['decision'], e['error']?.code]), [['refused', 'deny', 'MG_ADMIN_UNAUTHORIZED']]);
    const done = events.filter((e) => e['leaseId'] === ordersLease.id && e['outcome'] === 'completed');
    assert.equal(done.length, 1);
    const event = done[0]!;
    assert.equal(event['identity'].spiffeId, WORKLOADS.ops);
    assert.deepEqual([event['rule'], event['principal'], event['account'], event['role'], event['credential'], event['reason']], ['admin.principals', WORKLOADS.orders, ordersLease.username, h.roles.rw, 'direct', 'pipeline done']);
  });

  it('rotate-root is admin-only and recorded with the admin identity and account, never the password', async () => {
    const refused = await api('POST', '/v1/admin/rotate-root', 'orders', {});
    assert.equal(refused.status, 403);
    const rotated = await api('POST', '/v1/admin/rotate-root', 'ops', {});
    assert.equal(rotated.status, 200);
    const events = (await credentialEvents()).filter((e) => e['action'] === 'rotate');
    assert.deepEqual(
      events.map((e) => [e['identity']?.spiffeId, e['outcome'], e['credential'], e['account'], e['rule'], e['error']?.code ?? null]),
      [
        [WORKLOADS.orders, 'refused', 'admin', h.adminUser, null, 'MG_ADMIN_UNAUTHORIZED'],
        [WORKLOADS.ops, 'completed', 'admin', h.adminUser, 'admin.principals', null],
      ],
    );
    passwords.push((await readFile(rotated.body.file, 'utf8')).trim());
  });

  it('an expired direct credential is dropped by the sweep, and that is recorded too', async () => {
    const answer = await issue('orders', { ttl: 1 });
    assert.equal(answer.status, 201);
    const deadline = Date.now() + 15_000;
    let expired: CredentialEvent | undefined;
    while (expired === undefined && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      expired = (await credentialEvents()).find((e) => e['action'] === 'revoke' && e['leaseId'] === answer.body.leaseId);
    }
    assert.ok(expired !== undefined, 'the sweep recorded the expiry');
    assert.deepEqual([expired['identity'], expired['outcome'], expired['reason'], expired['account'], expired['principal']], [null, 'completed', 'expired', answer.body.username, WORKLOADS.orders]);
    assert.deepEqual(await existingAccounts([answer.body.username]), []);
  });

  it('issuing counts as a login of the rule\'s service class: past its login rate, 429 MG_THROTTLED with Retry-After, recorded', async () => {
    assert.equal((await issue('tight')).status, 201);
    assert.equal((await issue('tight')).status, 201);
    const refused = await issue('tight');
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, 'MG_THROTTLED');
    assert.match(refused.body.error.message, /tight.*logins\/s/);
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    assert.equal((await leasesOf(WORKLOADS.tight)).length, 2, 'the refused request made no account');
    const events = (await credentialEvents()).filter((e) => e.identity?.spiffeId === WORKLOADS.tight);
    assert.ok(events.some((e) => e.error?.code === 'MG_THROTTLED'), JSON.stringify(events));
  });

  it('the audit file holds no password', async () => {
    assert.ok(passwords.length >= MAX_LIVE + 2);
    const text = await readFile(h.auditFile, 'utf8');
    for (const password of passwords) assert.ok(!text.includes(password));
  });
});
