/**
 * Policy reloads against real MariaDB and mysql2: a file edit changes decisions without a
 * restart, a broken version is refused while the last good one keeps serving, reloads under
 * load fail no statement, open sessions keep their decision or are judged again as the config
 * says, and every event names the version that decided it (and a dry run's verdict).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { cleanup } from '../../helpers/cleanup.ts';
import { DEFAULT_POLICY, startHarness, STANDARD_WORKLOADS, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

/** The harness's policy with `extra` documents appended ({db}, {rw}, {ro} as the harness fills them). */
function policyText(h: Harness, extra = ''): string {
  return (DEFAULT_POLICY + extra).replaceAll('{db}', h.database).replaceAll('{rw}', h.roles.rw).replaceAll('{ro}', h.roles.ro);
}

const STRANGER_ALLOWED = `---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: strangers }
spec:
  action: ALLOW
  rules:
    - id: stranger
      from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/shop/sa/stranger"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{ro}" } }]
`;

/** The analytics rule gone: what a reload that takes access away looks like. */
function withoutAnalytics(h: Harness): string {
  return policyText(h).replace(/metadata: \{ name: readers \}[\s\S]*?(?=---)/, `metadata: { name: readers }\nspec:\n  action: ALLOW\n  rules:\n    - id: nobody\n      from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/none/sa/none"] } }]\n      to: [{ mariadb: { databases: ["{db}"], role: "${h.roles.ro}" } }]\n`);
}

async function eventually<T>(check: () => Promise<T | null | undefined | false>, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`${what} did not happen within ${ms / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function connect(h: Harness, workload: string) {
  return mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'u', database: h.database, ssl: h.ssl(workload) });
}

describe('policy reload (keep: open sessions keep their decision)', { skip: missing }, () => {
  let h: Harness;
  let policyFile: string;
  before(async () => {
    h = await startHarness({ name: 'preload', workloads: STANDARD_WORKLOADS, config: (c) => (c.policy = { ...c.policy!, pollInterval: '1s' }) });
    policyFile = join(h.dir, 'policy', 'policy.yaml');
  });
  after(async () => cleanup(() => h?.stop()));

  it('a policy file edit changes the decision for new connections, without a restart', async () => {
    await assert.rejects(connect(h, 'stranger'), /MG_POLICY_DENIED/);
    const before = h.meshgate.policy.current().version;
    await writeFile(policyFile, policyText(h, STRANGER_ALLOWED));
    const conn = await eventually(() => connect(h, 'stranger').catch(() => null), 'the stranger being allowed');
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_ROLE() AS r');
    assert.equal(rows[0]!.r, h.roles.ro);
    await conn.end();
    const version = h.meshgate.policy.current().version;
    assert.notEqual(version, before);
    const events = await h.readAudit();
    const reload = events.find((e) => e.type === 'policy' && e.action === 'reload' && e.policyVersion === version);
    assert.ok(reload, 'the reload is an audit event');
    assert.equal(reload.trigger, 'watch');
    assert.equal(reload.previousVersion, before);
    assert.equal(reload.outcome, 'completed');
    const login = events.find((e) => e.type === 'connection' && (e.identity as { spiffeId: string } | null)?.spiffeId === STANDARD_WORKLOADS.stranger && e.decision === 'allow');
    assert.equal(login?.policyVersion, version);
    assert.equal(login?.rule, 'strangers/stranger');
    const refusal = events.find((e) => e.type === 'connection' && (e.identity as { spiffeId: string } | null)?.spiffeId === STANDARD_WORKLOADS.stranger && e.decision === 'deny');
    assert.equal(refusal?.policyVersion, before, 'the refusal names the version that refused');
  });

  it('a broken version is refused with its reason, and the last good one keeps serving', async () => {
    const good = h.meshgate.policy.current().version;
    await writeFile(policyFile, policyText(h).replace('action: DENY', 'action: DENNY'));
    const refused = await eventually(async () => (await h.readAudit()).find((e) => e.type === 'policy' && e.outcome === 'refused'), 'the refusal');
    assert.equal(refused.previousVersion, good);
    assert.equal(refused.policyVersion, null);
    assert.match((refused.error as { message: string }).message, /spec\.action: expected "ALLOW", "DENY" or "AUDIT", got the string "DENNY"/);
    assert.equal(h.meshgate.policy.current().version, good);
    const conn = await connect(h, 'stranger');
    await conn.end();
    await assert.rejects(connect(h, 'staging'), /MG_POLICY_DENIED/, 'the DENY of the good version still holds');
    // The same broken content asked again (SIGHUP, admin) is refused again, not taken.
    const again = await h.meshgate.reloadPolicy('signal');
    assert.equal(again.outcome, 'refused');
  });

  it('open sessions keep their decision; new ones get the new version', async () => {
    await writeFile(policyFile, policyText(h));
    const settled = await h.meshgate.reloadPolicy('signal');
    assert.notEqual(settled.outcome, 'refused');
    const open = await connect(h, 'analytics');
    await writeFile(policyFile, withoutAnalytics(h));
    const result = await h.meshgate.reloadPolicy('signal');
    assert.equal(result.outcome, 'completed');
    const [rows] = await open.query<mysql.RowDataPacket[]>('SELECT 1 AS still');
    assert.equal(rows[0]!.still, 1);
    await open.end();
    await assert.rejects(connect(h, 'analytics'), /MG_POLICY_DENIED/);
  });

  it('reloads under load fail no statement', async () => {
    const a = policyText(h);
    const b = policyText(h, STRANGER_ALLOWED);
    await writeFile(policyFile, a);
    await h.meshgate.reloadPolicy('signal');
    const connections = await Promise.all(Array.from({ length: 8 }, () => connect(h, 'orders')));
    let statements = 0;
    const failures: unknown[] = [];
    let running = true;
    const workers = connections.map(async (conn, i) => {
      while (running) {
        try {
          await conn.query('SELECT ? AS n', [i]);
          statements++;
        } catch (error) {
          failures.push(error);
        }
      }
    });
    // New sessions during the reloads, too: each judged by whichever version is in force.
    const logins = (async () => {
      while (running) {
        try {
          const conn = await connect(h, 'orders');
          await conn.query('SELECT 1');
          await conn.end();
          statements++;
        } catch (error) {
          failures.push(error);
        }
      }
    })();
    const outcomes: string[] = [];
    for (let i = 0; i < 12; i++) {
      await writeFile(policyFile, i % 2 === 0 ? b : a);
      outcomes.push((await h.meshgate.reloadPolicy('signal')).outcome);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    running = false;
    await Promise.all([...workers, logins]);
    await Promise.all(connections.map((conn) => conn.end()));
    assert.deepEqual(failures, []);
    assert.ok(statements > 100, `only ${statements} statements ran`);
    // The watch may have taken a write first; either way every version went in.
    assert.ok(outcomes.every((o) => o === 'completed' || o === 'unchanged'), outcomes.join(','));
  });
});

describe('policy reload (reevaluate: sessions the new version refuses end)', { skip: missing }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ name: 'prevote', workloads: STANDARD_WORKLOADS, config: (c) => (c.policy = { ...c.policy!, watch: false, openSessions: 'reevaluate' }) });
  });
  after(async () => cleanup(() => h?.stop()));

  it('ends the sessions that lost access, with an audit event, and keeps the others under the new version', async () => {
    const analytics = await connect(h, 'analytics');
    const orders = await connect(h, 'orders');
    await orders.query('SELECT 1');
    const before = h.meshgate.policy.current().version;
    await writeFile(join(h.dir, 'policy', 'policy.yaml'), withoutAnalytics(h));
    const result = await h.meshgate.reloadPolicy('admin');
    assert.equal(result.outcome, 'completed');
    assert.equal(result.outcome === 'completed' ? result.sessionsEnded : -1, 1);
    await assert.rejects(analytics.query('SELECT 1'), /closed|lost|ECONNRESET|EPIPE/i);
    const [rows] = await orders.query<mysql.RowDataPacket[]>('SELECT 2 AS still');
    assert.equal(rows[0]!.still, 2);
    await orders.end();
    analytics.destroy();
    const events = await h.readAudit();
    const version = h.meshgate.policy.current().version;
    const ended = events.find((e) => e.type === 'session_end' && (e.identity as { spiffeId: string }).spiffeId === STANDARD_WORKLOADS.analytics);
    assert.match(String(ended?.reason), new RegExp(`^policy version ${version} no longer allows this session: no ALLOW rule matches`));
    const reload = events.find((e) => e.type === 'policy' && e.action === 'reload');
    assert.equal(reload?.sessionsEnded, 1);
    assert.equal(reload?.previousVersion, before);
    const ordersStatements = events.filter((e) => e.type === 'statement' && (e.identity as { spiffeId: string }).spiffeId === STANDARD_WORKLOADS.orders);
    assert.deepEqual(
      ordersStatements.map((e) => e.policyVersion),
      [before, version],
      'a session judged again names the version that allows it now',
    );
  });

  it('records what a dry-run rule would have decided, on the login and each statement, without enforcing it', async () => {
    const watch = `---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: watch-analytics }
spec:
  action: AUDIT
  rules:
    - id: no-analytics
      from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/shop/sa/analytics"] } }]
`;
    await writeFile(join(h.dir, 'policy', 'policy.yaml'), policyText(h, watch));
    assert.equal((await h.meshgate.reloadPolicy('signal')).outcome, 'completed');
    const conn = await connect(h, 'analytics');
    await conn.query('SELECT 3');
    await conn.end();
    const mine = (await h.readAudit()).filter((e) => (e.identity as { spiffeId: string } | null)?.spiffeId === STANDARD_WORKLOADS.analytics && (e.type === 'connection' || e.type === 'statement') && e.decision === 'allow');
    const dry = { rule: 'watch-analytics/no-analytics', decision: 'deny', reason: 'would be denied by rule watch-analytics/no-analytics (DENY for principals cluster.local/ns/shop/sa/analytics) (action AUDIT: recorded, not enforced)'.replace('cluster.local', TRUST_DOMAIN) };
    const latest = mine.slice(-2);
    assert.deepEqual(latest.map((e) => [e.type, e.dryRun]), [['connection', dry], ['statement', dry]]);
  });
});
