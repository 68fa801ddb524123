/**
 * meshgate with policy.git against the real MariaDB: a push that denies the orders service
 * ends its next login, a broken push changes nothing, the fix restores access — each seen
 * through a MySQL client, from a repository on disk fetched at a 1s interval.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { captureLog } from '../../helpers/log.ts';
import { startHarness, STANDARD_WORKLOADS, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { PolicyRepo } from '../../helpers/policy-repo.ts';

const DENY_ORDERS = `---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: deny-orders }
spec:
  action: DENY
  rules:
    - from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/shop/sa/orders"] } }]
`;

describe('meshgate serve: policy from git', { timeout: 60_000 }, () => {
  const repo = new PolicyRepo();
  const serverLog = captureLog();
  let h: Harness | undefined;
  let policyText = '';
  let first = '';

  before(async () => {
    h = await startHarness({
      name: 'polgit',
      workloads: STANDARD_WORKLOADS,
      log: serverLog.log,
      config: (input) => {
        // The harness's own policy, moved into the repository.
        policyText = readFileSync(join(input.policy.dir!, 'policy.yaml'), 'utf8');
        first = repo.commit({ 'policy/policy.yaml': policyText });
        input.policy = { git: { url: repo.url, path: 'policy', interval: '1s' } };
      },
    });
  });
  after(async () => {
    await h?.stop();
    repo.remove();
  });

  /** The orders service's role through meshgate, or the error its login got. */
  async function ordersLogin(): Promise<string> {
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: h!.port, user: 'ignored', database: h!.database, ssl: h!.ssl('orders') }).catch((e: Error) => e);
    if (conn instanceof Error) return conn.message;
    try {
      const [rows] = await conn.query('SELECT CURRENT_ROLE() AS role');
      return (rows as { role: string }[])[0]!.role;
    } finally {
      await conn.end();
    }
  }

  async function until(check: (value: string) => boolean, what: string): Promise<string> {
    const deadline = Date.now() + 8_000;
    let last = '';
    while (Date.now() < deadline) {
      last = await ordersLogin();
      if (check(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    return assert.fail(`${what}; last: ${last}`);
  }

  it('a pushed DENY ends the next login, a broken push changes nothing, the fix restores it', { timeout: 30_000 }, async () => {
    assert.equal(await ordersLogin(), h!.roles.rw);
    assert.ok(serverLog.lines.some((l) => l.message === 'policy commit applied' && l['commit'] === first), serverLog.text());

    const deny = repo.commit({ 'policy/policy.yaml': policyText + DENY_ORDERS });
    assert.match(await until((v) => v.includes('MG_POLICY_DENIED'), 'the DENY is enforced'), /MG_POLICY_DENIED/);
    // Logged just after the swap, so perhaps a moment after a login saw it.
    await until(() => serverLog.lines.some((l) => l.message === 'policy commit applied' && l['commit'] === deny), 'the DENY commit is logged');

    const broken = repo.commit({ 'policy/policy.yaml': policyText.replace('action: ALLOW', 'action: MAYBE') });
    await until(() => serverLog.lines.some((l) => l.message.startsWith('policy commit refused') && l['commit'] === broken), 'the broken commit is refused');
    await new Promise((r) => setTimeout(r, 2_200));
    assert.match(await ordersLogin(), /MG_POLICY_DENIED/, 'the policy in force is kept');
    assert.equal(serverLog.lines.filter((l) => l.message.startsWith('policy commit refused')).length, 1, 'logged once over several intervals');

    const fixed = repo.commit({ 'policy/policy.yaml': policyText });
    assert.equal(await until((v) => v === h!.roles.rw, 'access is back'), h!.roles.rw);
    await until(() => serverLog.lines.some((l) => l.message === 'policy commit applied' && l['commit'] === fixed), 'the fix is logged');

    // Each commit is a version in the audit: put in force, or refused once.
    const policyEvents = (await h!.readAudit()).filter((e) => e['type'] === 'policy');
    assert.deepEqual(
      policyEvents.map((e) => [e['trigger'], e['outcome'], e['policyVersion']]),
      [
        ['start', 'completed', first],
        ['git', 'completed', deny],
        ['git', 'refused', null],
        ['git', 'completed', fixed],
      ],
    );
    assert.equal(policyEvents[2]?.['source'], `${repo.url}#main:policy@${broken}`);
  });

  it('SIGHUP (reloadPolicy) fetches at once and answers with what became of the commit', { timeout: 10_000 }, async () => {
    const pushed = repo.commit({ 'policy/policy.yaml': policyText + '# a comment\n' });
    const result = await h!.meshgate.reloadPolicy('signal');
    // `unchanged` when the 1s timer's fetch, running already, took it first.
    assert.ok(result.outcome === 'completed' || result.outcome === 'unchanged', result.outcome);
    assert.equal(result.version, pushed);
    assert.equal(h!.meshgate.policy.current().version, pushed);
    assert.deepEqual(await h!.meshgate.reloadPolicy('signal'), { outcome: 'unchanged', version: pushed, rules: h!.meshgate.policy.current().ruleCount });
  });
});
