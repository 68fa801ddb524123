/**
 * From a config file with policy.git to the PolicySource engines read: the decision follows a
 * push, a broken push leaves it alone, and a one-off load (creds issue) leaves the work
 * directory of a running meshgate untouched.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfigFile } from '../../../src/config/load.ts';
import { loadPolicyDir, subjectFromPrincipal, SwappablePolicy } from '../../../src/policy/index.ts';
import { loadPolicyOnce, startPolicy } from '../../../src/policy-start.ts';
import { captureLog } from '../../helpers/log.ts';
import { BROKEN, ordersPolicy, PolicyRepo } from '../../helpers/policy-repo.ts';

const repo = new PolicyRepo();
after(() => repo.remove());

describe('policy from git at start (policy.git in the config)', { timeout: 30_000 }, () => {
  it('serves the commit at the ref and the next good one pushed', { timeout: 10_000 }, async () => {
    const first = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_writer') });
    mkdirSync(join(repo.root, 'tls'));
    for (const f of ['server.crt', 'server.key', 'bundle.pem']) writeFileSync(join(repo.root, 'tls', f), 'x');
    const configPath = join(repo.root, 'meshgate.yaml');
    writeFileSync(
      configPath,
      [
        'listener: { port: 0, tls: { cert: tls/server.crt, key: tls/server.key } }',
        'trust: { bundles: [tls/bundle.pem], trustDomains: [cluster.local] }',
        'upstream: { roles: { shop_writer: { user: u, password: { env: P } } } }',
        `policy: { git: { url: "${repo.url}", path: policy, interval: 1h } }`,
        '',
      ].join('\n'),
    );
    const config = loadConfigFile(configPath);
    const { log } = captureLog();
    const started = await startPolicy(config, log, {});
    try {
      // What server.ts does through the reloader, reduced to the swap.
      const policy = new SwappablePolicy(started.initial);
      started.onCommit(async (revision) => {
        policy.swap(await loadPolicyDir(revision.dir, { version: revision.commit }));
      });
      assert.equal(started.source, `${repo.url}#main:policy`);
      const subject = subjectFromPrincipal('cluster.local/ns/shop/sa/orders');
      const role = () => policy.current().evaluate(subject, { engine: 'mysql', database: 'shop' }).role;
      assert.equal(started.initial.version, first);
      assert.equal(role(), 'shop_writer');
      assert.ok(existsSync(join(repo.root, 'state', 'policy-git', 'checkouts', first)), 'the work directory sits beside the leases');

      repo.commit({ 'policy/orders.yaml': BROKEN });
      assert.equal((await started.git?.syncNow())?.status, 'refused');
      assert.equal(role(), 'shop_writer');

      const fixed = repo.commit({ 'policy/orders.yaml': ordersPolicy('shop_reader') });
      assert.equal((await started.git?.syncNow())?.status, 'applied');
      assert.equal(role(), 'shop_reader');

      // A one-off load clones afresh elsewhere: the running sync's checkout stays.
      const once = await loadPolicyOnce(config, log, {});
      assert.equal(once.version, fixed);
      assert.ok(existsSync(join(repo.root, 'state', 'policy-git', 'checkouts', fixed)));
    } finally {
      await started.close();
    }
  });
});
