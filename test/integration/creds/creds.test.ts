/**
 * Short-lived credentials end to end against the real MariaDB: `meshgate creds ...` (in
 * process, through the CLI's own entry point) and the admin HTTP API of a running meshgate.
 * Issued accounts are used DIRECTLY (no proxy), revocation kills them, denials create
 * nothing, the admin password rotates without being printed, and every account made here
 * is gone at the end.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { runCli } from '../../../src/cli/main.ts';
import { captureIO } from '../../helpers/cli.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { makeSigningKey, signToken, startJwksServer, type JwksServer, type SigningKey } from '../../helpers/jwks-server.ts';
import { DEFAULT_POLICY, existingAccounts, MARIADB, startHarness, STANDARD_WORKLOADS, TRUST_DOMAIN, type Harness, type HarnessConfigInput } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const NAME = 'credscli';

function k8sClaims(namespace: string, serviceAccount: string) {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: ISSUER,
    aud: ['meshgate'],
    sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
    'kubernetes.io': { namespace, serviceaccount: { name: serviceAccount, uid: '0d5f' } },
    exp: now + 600,
    iat: now - 5,
    nbf: now - 5,
  };
}

interface Answer {
  status: number;
  body: any;
}

describe('meshgate creds and the admin API', { skip: missing }, () => {
  let h: Harness;
  let jwks: JwksServer;
  let key: SigningKey;
  let input: HarnessConfigInput;
  let configFile: string;
  let adminPasswordFile: string;
  let ordersTokenFile: string;
  const opened: mysql.Connection[] = [];

  const cli = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const io = { ...captureIO(), env };
    const code = await runCli(args, io);
    return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
  };
  const field = (text: string, name: string) => {
    const match = new RegExp(`^  ${name}:\\s+(\\S+)`, 'm').exec(text);
    assert.ok(match, `no ${name} in:\n${text}`);
    return match[1]!;
  };
  const direct = async (user: string, password: string) => {
    const conn = await mysql.createConnection({ host: MARIADB.host, port: MARIADB.port, user, password, database: h.database });
    conn.on('error', () => undefined);
    opened.push(conn);
    return conn;
  };
  const tokenFor = (namespace: string, serviceAccount: string) => signToken(key, k8sClaims(namespace, serviceAccount));

  function api(method: string, path: string, options: { body?: object; token?: string; as?: string } = {}): Promise<Answer> {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const client = options.as === undefined ? {} : { cert: h.ssl(options.as).cert, key: h.ssl(options.as).key };
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: h.meshgate.adminPort!,
          method,
          path,
          ca: h.ssl('orders').ca,
          ...client,
          agent: false,
          headers: {
            ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }),
            ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  before(async () => {
    key = await makeSigningKey('ES256', 'k8s-1');
    jwks = await startJwksServer([key.jwk]);
    h = await startHarness({
      name: NAME,
      workloads: STANDARD_WORKLOADS,
      credentials: 'dynamic',
      // The standard rules, granting direct credentials as well (test/integration/creds/direct.test.ts has rules that do not).
      policy: DEFAULT_POLICY.replaceAll('role: "{rw}" }', 'role: "{rw}", direct: true }').replaceAll('role: "{ro}" }', 'role: "{ro}", direct: true }'),
      setupSql: ['CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(50))', "INSERT INTO {db}.items VALUES (1, 'one')"],
      config: (c) => {
        c.tokens = {
          issuers: [{ issuer: ISSUER, audiences: ['meshgate'], jwks: { url: jwks.url, caFile: jwks.caFile }, mapping: { kind: 'kubernetes' }, trustDomain: TRUST_DOMAIN }],
        };
        c.upstream.credentials = { ...c.upstream.credentials!, issuedMaxTtl: '1h' };
        c.admin = { host: '127.0.0.1', port: 0, principals: [STANDARD_WORKLOADS.orders] };
        input = c;
      },
    });
    // The same configuration as a file, for the CLI (YAML is a superset of JSON; paths are absolute).
    configFile = join(h.dir, 'meshgate.yaml');
    await writeFile(configFile, JSON.stringify(input, null, 2));
    const adminPassword = input.upstream.credentials!.admin.password;
    assert.ok('file' in adminPassword);
    adminPasswordFile = adminPassword.file;
    ordersTokenFile = join(h.dir, 'orders.token');
    await writeFile(ordersTokenFile, (await tokenFor('shop', 'orders')) + '\n', { mode: 0o600 });
  });

  after(async () => {
    for (const conn of opened) conn.destroy();
    // Every account this meshgate made is named in its state store, revoked leases included.
    const ours = new Set((await h?.meshgate.credentials!.leases.list({}))?.map((l) => l.username) ?? []);
    await cleanup(
      async () => {
        if (h === undefined) return;
        // Issued leases outlive meshgate by design: end any still live (through the CLI, which
        // reads the admin password file afresh after the rotations), then stop.
        for (const role of [h.roles.rw, h.roles.ro]) await cli(['creds', 'revoke', '--config', configFile, '--role', role]).catch(() => undefined);
      },
      () => h?.stop(),
      () => jwks?.close(),
    );
    assert.equal(ours.size, 5, `leases recorded: ${ours.size}`);
    assert.deepEqual(await existingAccounts(ours), [], 'no MariaDB account made here is left');
  });

  let cliLease: { id: string; username: string; password: string; conn: mysql.Connection };
  /** Direct connections of the read-only leases, which the admin API revokes below. */
  const readOnly: mysql.Connection[] = [];

  it('creds issue: a token policy allows gets a MariaDB account that works directly, in the role policy names', async () => {
    const { code, out, err } = await cli(['creds', 'issue', '--config', configFile, '--database', h.database, '--token-file', ordersTokenFile, '--ttl', '10m']);
    assert.equal(code, 0, err);
    assert.match(out, new RegExp(`issued a MariaDB credential for ${STANDARD_WORKLOADS.orders} \\(role ${h.roles.rw}, allowed by rule writers/orders\\)`));
    assert.equal(field(out, 'host'), MARIADB.host);
    assert.equal(field(out, 'port'), String(MARIADB.port));
    assert.equal(field(out, 'database'), h.database);
    assert.match(field(out, 'expires'), /^\d{4}-\d\d-\d\dT/);
    assert.match(out, /\(in (10m|599s|598s)\)/);
    const username = field(out, 'username');
    const password = field(out, 'password');
    const id = field(out, 'lease');
    assert.match(username, /^mg-shop\.orders-[a-z2-7]{8}$/);
    assert.equal(err, '', 'nothing on stderr, in particular no password');
    assert.equal(out.split(password).length, 2, 'the password is printed exactly once');

    const conn = await direct(username, password);
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_ROLE() AS r, (SELECT name FROM items WHERE id = 1) AS name');
    assert.deepEqual({ ...rows[0] }, { r: h.roles.rw, name: 'one' });
    await conn.query("INSERT INTO items VALUES (2, 'two')");
    cliLease = { id, username, password, conn };
  });

  it('creds issue reads the token from MESHGATE_TOKEN and prints one JSON object with --json', async () => {
    const { code, out } = await cli(['creds', 'issue', '-c', configFile, '--database', h.database, '--json'], { MESHGATE_TOKEN: await tokenFor('shop', 'analytics') });
    assert.equal(code, 0);
    const view = JSON.parse(out);
    assert.deepEqual(Object.keys(view).sort(), ['database', 'expiresAt', 'host', 'leaseId', 'password', 'port', 'principal', 'role', 'ruleId', 'username']);
    assert.equal(view.role, h.roles.ro);
    const conn = await direct(view.username, view.password);
    await assert.rejects(conn.query("INSERT INTO items VALUES (3, 'three')"), /INSERT command denied/);
    readOnly.push(conn);
    // The default TTL (issuedTtl, 15m) applied.
    const minutes = (Date.parse(view.expiresAt) - Date.now()) / 60_000;
    assert.ok(minutes > 14 && minutes <= 15, String(minutes));
  });

  it('POST /v1/creds: the same through a running meshgate, with the token as Authorization: Bearer', async () => {
    const answer = await api('POST', '/v1/creds', { body: { database: h.database, ttl: '5m' }, token: await tokenFor('shop', 'analytics') });
    assert.equal(answer.status, 201);
    assert.deepEqual([answer.body.host, answer.body.port, answer.body.database, answer.body.role], [MARIADB.host, MARIADB.port, h.database, h.roles.ro]);
    const conn = await direct(answer.body.username, answer.body.password);
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM items');
    assert.equal(Number(rows[0]!.n), 2);
    readOnly.push(conn);
    const bad = await api('POST', '/v1/creds', { body: { database: h.database }, token: 'not-a-jwt' });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.error.code, 'MG_TOKEN_INVALID');
  });

  it('creds list shows the live leases, never a password', async () => {
    const { code, out } = await cli(['creds', 'list', '--config', configFile]);
    assert.equal(code, 0);
    assert.match(out, /^LEASE\s+PURPOSE\s+PRINCIPAL\s+ROLE\s+USERNAME\s+STATE\s+EXPIRES$/m);
    assert.match(out, new RegExp(`^${cliLease.id}\\s+issued\\s+${STANDARD_WORKLOADS.orders}\\s+${h.roles.rw}\\s+${cliLease.username}\\s+active\\s+\\d{4}-`, 'm'));
    assert.ok(!out.includes(cliLease.password));
    const json = await cli(['creds', 'list', '--config', configFile, '--json']);
    const leases = JSON.parse(json.out).leases as { id: string; state: string }[];
    assert.equal(leases.length, 3);
    assert.ok(leases.every((l) => l.state === 'active'));
    assert.doesNotMatch(json.out, /password/i);
  });

  it('creds revoke: drops the account, kills its direct connection, and new logins fail; a second revoke says so', async () => {
    const { code, out } = await cli(['creds', 'revoke', '--config', configFile, '--lease', cliLease.id, '--reason', 'pipeline finished']);
    assert.equal(code, 0);
    assert.match(out, /revoked 1 lease: MariaDB account dropped, connections killed/);
    assert.match(out, new RegExp(`${cliLease.id}\\s+issued\\s+${STANDARD_WORKLOADS.orders}`));
    await assert.rejects(cliLease.conn.query('SELECT 1'), 'the open connection was killed');
    await assert.rejects(direct(cliLease.username, cliLease.password), /Access denied/);

    const again = await cli(['creds', 'revoke', '--config', configFile, '--lease', cliLease.id]);
    assert.equal(again.code, 0);
    assert.match(again.out, new RegExp(`lease ${cliLease.id} was already revoked at \\d{4}-.* \\(pipeline finished\\); nothing to revoke`));
    const unknown = await cli(['creds', 'revoke', '--config', configFile, '--lease', 'lease_doesnotexist']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /\[MG_LEASE_NOT_FOUND\] no lease lease_doesnotexist/);
    const nobody = await cli(['creds', 'revoke', '--config', configFile, '--identity', `${TRUST_DOMAIN}/ns/shop/sa/nobody`]);
    assert.equal(nobody.code, 0);
    assert.match(nobody.out, new RegExp(`no active lease matches identity spiffe://${TRUST_DOMAIN}/ns/shop/sa/nobody; nothing to revoke`));
    const all = await cli(['creds', 'list', '--config', configFile, '--all']);
    assert.match(all.out, new RegExp(`^${cliLease.id}\\s+issued.*\\s+revoked\\s+revoked \\d{4}-`, 'm'));
  });

  it('a denied identity gets MG_POLICY_DENIED naming the rule, and no MariaDB account or lease is created', async () => {
    const leases = (await h.meshgate.credentials!.leases.list({})).length;
    const staging = await tokenFor('staging', 'orders');
    const denied = await cli(['creds', 'issue', '--config', configFile, '--database', h.database], { MESHGATE_TOKEN: staging });
    assert.equal(denied.code, 1);
    assert.match(denied.err, /^meshgate creds issue: \[MG_POLICY_DENIED\] denied by rule deny-staging/);
    const stranger = await cli(['creds', 'issue', '--config', configFile, '--database', h.database], { MESHGATE_TOKEN: await tokenFor('shop', 'stranger') });
    assert.equal(stranger.code, 1);
    assert.match(stranger.err, /\[MG_POLICY_DENIED\] no ALLOW rule matches/);
    const http = await api('POST', '/v1/creds', { body: { database: h.database }, token: staging });
    assert.equal(http.status, 403);
    assert.equal(http.body.error.code, 'MG_POLICY_DENIED');
    // A lease record is written before its account exists, so no new record means no account.
    assert.equal((await h.meshgate.credentials!.leases.list({})).length, leases);
    assert.deepEqual((await h.leaseAccounts()).filter((user) => /^mg-(staging\.orders|shop\.stranger)-/.test(user)), []);
  });

  it('a TTL above issuedMaxTtl is MG_LEASE_TTL_TOO_LONG, and nothing is created', async () => {
    const leases = (await h.meshgate.credentials!.leases.list({})).length;
    const { code, err } = await cli(['creds', 'issue', '--config', configFile, '--database', h.database, '--token-file', ordersTokenFile, '--ttl', '2h']);
    assert.equal(code, 1);
    assert.match(err, /\[MG_LEASE_TTL_TOO_LONG\] a TTL of 7200 s is above the maximum of 3600 s/);
    const http = await api('POST', '/v1/creds', { body: { database: h.database, ttl: '2h' }, token: await tokenFor('shop', 'orders') });
    assert.equal(http.status, 400);
    assert.equal(http.body.error.code, 'MG_LEASE_TTL_TOO_LONG');
    assert.equal((await h.meshgate.credentials!.leases.list({})).length, leases);
  });

  it('creds issue without a tokens section in the config is MG_CONFIG_INVALID; without a token, a usage error', async () => {
    const { tokens: _tokens, ...withoutTokens } = input;
    const file = join(h.dir, 'no-tokens.yaml');
    await writeFile(file, JSON.stringify(withoutTokens));
    const none = await cli(['creds', 'issue', '--config', file, '--database', h.database, '--token-file', ordersTokenFile]);
    assert.equal(none.code, 1);
    assert.match(none.err, /\[MG_CONFIG_INVALID\] .*no tokens section/);
    const noToken = await cli(['creds', 'issue', '--config', configFile, '--database', h.database]);
    assert.equal(noToken.code, 2);
    assert.match(noToken.err, /no token: pass --token-file PATH, set MESHGATE_TOKEN/);
  });

  it('admin API: listing and revoking need an admin client certificate (401 without, 403 for another workload)', async () => {
    for (const [method, path] of [['GET', '/v1/leases'], ['POST', '/v1/leases/revoke']] as const) {
      const anonymous = await api(method, path, { body: { role: h.roles.ro } });
      assert.equal(anonymous.status, 401, path);
      assert.equal(anonymous.body.error.code, 'MG_CLIENT_CERT_MISSING');
      const workload = await api(method, path, { body: { role: h.roles.ro }, as: 'analytics' });
      assert.equal(workload.status, 403, path);
      assert.equal(workload.body.error.code, 'MG_ADMIN_UNAUTHORIZED');
      // A token is no admin credential either.
      const token = await api(method, path, { body: { role: h.roles.ro }, token: await tokenFor('shop', 'orders') });
      assert.equal(token.status, 401, path);
    }
    assert.equal((await h.meshgate.credentials!.leases.list({ states: ['active'], role: h.roles.ro })).length, 2, 'nothing was revoked');
    const health = await api('GET', '/healthz');
    assert.deepEqual([health.status, health.body], [200, { ok: true }]);
  });

  it('admin API: an admin lists and revokes by role; the direct connections of those leases are killed', async () => {
    const list = await api('GET', '/v1/leases', { as: 'orders' });
    assert.equal(list.status, 200);
    const ro = (list.body.leases as { id: string; role: string; username: string }[]).filter((l) => l.role === h.roles.ro);
    assert.equal(ro.length, 2);
    const revoked = await api('POST', '/v1/leases/revoke', { body: { role: h.roles.ro, reason: 'rotation drill' }, as: 'orders' });
    assert.equal(revoked.status, 200);
    assert.deepEqual(revoked.body.revoked.map((l: { id: string }) => l.id).sort(), ro.map((l) => l.id).sort());
    assert.ok(revoked.body.revoked.every((l: { state: string; revokeReason: string }) => l.state === 'revoked' && l.revokeReason === 'rotation drill'));
    const live = await existingAccounts(ro.map((l) => l.username));
    assert.deepEqual(live, [], 'their MariaDB accounts are gone');
    assert.equal(readOnly.length, 2);
    for (const conn of readOnly) await assert.rejects(conn.query('SELECT 1'), 'the open connection was killed');
    const unknown = await api('POST', '/v1/leases/revoke', { body: { leaseId: 'lease_nope' }, as: 'orders' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'MG_LEASE_NOT_FOUND');
  });

  it('--server: the commands go through the admin API with the same output', async () => {
    const server = `https://127.0.0.1:${h.meshgate.adminPort}`;
    const ca = h.clients['orders']!.ca;
    const issued = await cli(['creds', 'issue', '--server', server, '--ca', ca, '--database', h.database, '--token-file', ordersTokenFile, '--json']);
    assert.equal(issued.code, 0, issued.err);
    const view = JSON.parse(issued.out);
    const conn = await direct(view.username, view.password);
    await conn.query('SELECT 1');
    const admin = ['--server', server, '--ca', ca, '--cert', h.clients['orders']!.cert, '--key', h.clients['orders']!.key];
    const listed = await cli(['creds', 'list', ...admin]);
    assert.equal(listed.code, 0, listed.err);
    assert.match(listed.out, new RegExp(`^${view.leaseId}\\s+issued`, 'm'));
    const notAdmin = await cli(['creds', 'list', '--server', server, '--ca', ca, '--cert', h.clients['analytics']!.cert, '--key', h.clients['analytics']!.key]);
    assert.equal(notAdmin.code, 1);
    assert.match(notAdmin.err, /\[MG_ADMIN_UNAUTHORIZED\]/);
    const revoked = await cli(['creds', 'revoke', ...admin, '--lease', view.leaseId]);
    assert.equal(revoked.code, 0, revoked.err);
    assert.match(revoked.out, /revoked 1 lease/);
    await assert.rejects(conn.query('SELECT 1'));
    const again = await cli(['creds', 'revoke', ...admin, '--lease', view.leaseId]);
    assert.match(again.out, /was already revoked/);
    const untrusted = await cli(['creds', 'list', '--server', server, '--cert', h.clients['orders']!.cert, '--key', h.clients['orders']!.key]);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.err, /\[MG_CONFIG_INVALID\] the certificate of https:\/\/127\.0\.0\.1:\d+ does not verify .*--ca/);
  });

  it('rotate-root (admin API, then CLI): the old password stops working, the file has the new one, and it is never printed', async () => {
    const user = h.adminUser!;
    const canLogIn = async (password: string) => {
      try {
        const conn = await mysql.createConnection({ host: MARIADB.host, port: MARIADB.port, user, password });
        await conn.end();
        return true;
      } catch (error) {
        assert.match((error as Error).message, /Access denied/);
        return false;
      }
    };
    const first = (await readFile(adminPasswordFile, 'utf8')).trim();
    const denied = await api('POST', '/v1/admin/rotate-root', { as: 'analytics' });
    assert.equal(denied.status, 403);
    assert.equal((await readFile(adminPasswordFile, 'utf8')).trim(), first);
    const rotated = await api('POST', '/v1/admin/rotate-root', { as: 'orders' });
    assert.equal(rotated.status, 200);
    assert.deepEqual(rotated.body, { rotated: true, user, file: adminPasswordFile });
    const second = (await readFile(adminPasswordFile, 'utf8')).trim();
    assert.notEqual(second, first);
    assert.equal(await canLogIn(first), false);
    assert.equal(await canLogIn(second), true);
    // The running meshgate switched to the new password: it still issues.
    const issued = await api('POST', '/v1/creds', { body: { database: h.database }, token: await tokenFor('shop', 'orders') });
    assert.equal(issued.status, 201);
    await api('POST', '/v1/leases/revoke', { body: { leaseId: issued.body.leaseId }, as: 'orders' });

    const { code, out, err } = await cli(['creds', 'rotate-root', '--config', configFile]);
    assert.equal(code, 0, err);
    assert.equal(out, `rotated the admin credential of ${user}; the new password is in ${adminPasswordFile}`);
    const third = (await readFile(adminPasswordFile, 'utf8')).trim();
    assert.notEqual(third, second);
    assert.ok(!out.includes(third) && !err.includes(third) && !out.includes(second) && !err.includes(second));
    assert.equal(await canLogIn(second), false);
    assert.equal(await canLogIn(third), true);
  });
});
