/**
 * The analysis itself, pure: events the real recorder builds, the policy's inventory and
 * grants as MariaDB prints them (SHOW GRANTS lines captured from MariaDB 10.11), in; findings
 * and the suggested edits out.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeEvents, parseShowGrants, renderPatch, roleReadsOnly, roleTables, roleWrites, suggestEdits, type GrantsView } from '../../../src/analyze/index.ts';
import { policyInventory, type PolicySourceText } from '../../../src/policy/index.ts';
import { AuditRecorder } from '../../../src/audit/recorder.ts';
import { memoryAuditSink } from '../../helpers/audit.ts';
import { BILLING, CATALOG_POLICY, INTRUDER, ORDERS, SHOP_POLICY, shopEvents } from './fixture.ts';

const SOURCES: PolicySourceText[] = [
  { name: 'policy/catalog.yaml', text: CATALOG_POLICY },
  { name: 'policy/shop.yaml', text: SHOP_POLICY },
];
const RULES = policyInventory(SOURCES);

function mariadbView(grants: Record<string, string[]>, tables: Record<string, string[]> = { shop: ['audit_trail', 'customers', 'invoices', 'orders'] }): GrantsView {
  return {
    source: 'mariadb',
    roles: new Map(Object.entries(grants).map(([role, lines]) => [role, parseShowGrants(role, lines)])),
    missing: [],
    tables: new Map(Object.entries(tables)),
  };
}

const GRANTS = mariadbView({
  shop_rw: ['GRANT `shop_ro` TO `shop_rw`', 'GRANT USAGE ON *.* TO `shop_rw`', 'GRANT INSERT, UPDATE, DELETE ON `shop`.* TO `shop_rw`', 'GRANT USAGE ON *.* TO `shop_ro`', 'GRANT SELECT ON `shop`.* TO `shop_ro`'],
  shop_ro: ['GRANT USAGE ON *.* TO `shop_ro`', 'GRANT SELECT ON `shop`.* TO `shop_ro`'],
});

describe('grants as MariaDB prints them', () => {
  it('reads privileges by scope, column lists dropped, roles granted, routines left out, other grantees ignored', () => {
    const role = parseShowGrants('r', [
      'GRANT `base` TO `r`',
      'GRANT USAGE ON *.* TO `r`',
      'GRANT INSERT, UPDATE (`a`, `b`) ON `db`.`t` TO `r`',
      'GRANT EXECUTE ON PROCEDURE `db`.`p` TO `r`',
      'GRANT SELECT ON `db`.* TO `base`',
    ]);
    assert.deepEqual(role, {
      role: 'r',
      roles: ['base'],
      grants: [
        { database: null, table: null, privileges: ['USAGE'] },
        { database: 'db', table: 't', privileges: ['INSERT', 'UPDATE'] },
      ],
    });
  });

  it('a role writes when it or a role granted to it may change data; reads only with SELECT alone', () => {
    assert.equal(roleWrites(GRANTS, 'shop_rw'), true);
    assert.equal(roleWrites(GRANTS, 'shop_ro'), false);
    assert.equal(roleReadsOnly(GRANTS, 'shop_ro'), true);
    assert.equal(roleReadsOnly(GRANTS, 'shop_rw'), false);
    assert.equal(roleWrites(GRANTS, 'unknown'), null, 'a role MariaDB does not know: cannot tell');
    assert.deepEqual([...roleTables(GRANTS, 'shop_rw')!].sort(), ['shop.audit_trail', 'shop.customers', 'shop.invoices', 'shop.orders']);
    const wild = mariadbView({ r: ['GRANT SELECT ON `shop\\_%`.* TO `r`'] }, { shop_eu: ['a'], shopx: ['b'] });
    assert.deepEqual([...roleTables(wild, 'r')!], ['shop_eu.a'], 'a `_` escaped in a grant is a literal underscore');
    assert.equal(roleTables(mariadbView({ r: ['GRANT ALL PRIVILEGES ON *.* TO `r` WITH GRANT OPTION'] }), 'r'), null);
  });
});

describe('findings from the audit', () => {
  it('with grants from MariaDB: writing roles unused for writes, the read-only role to use, and untouched tables', () => {
    const { findings } = analyzeEvents(shopEvents(), RULES, GRANTS);
    assert.deepEqual(findings.unusedWrites.map((w) => [w.identity, w.role, w.readOnlyRole]), [[ORDERS.principal, 'shop_rw', 'shop_ro']]);
    assert.deepEqual(findings.untouchedTables, [
      { role: 'shop_ro', touched: 1, reachable: 4, untouched: ['shop.audit_trail', 'shop.customers', 'shop.invoices'] },
      { role: 'shop_rw', touched: 3, reachable: 4, untouched: ['shop.audit_trail'] },
    ]);
    assert.ok(findings.notes.some((n) => /approximate/.test(n)));
  });

  it('no read-only role is suggested when none reads every database the writing role reaches', () => {
    const narrow = mariadbView({
      shop_rw: ['GRANT SELECT, INSERT ON `shop`.* TO `shop_rw`', 'GRANT SELECT ON `billing`.* TO `shop_rw`'],
      shop_ro: ['GRANT SELECT ON `shop`.* TO `shop_ro`'],
    });
    const { findings } = analyzeEvents(shopEvents(), RULES, narrow);
    assert.deepEqual(findings.unusedWrites.map((w) => w.readOnlyRole), [null]);
  });

  it('an identity whose verbs could not be told, or that holds direct credentials, is not said to have never written', () => {
    const events = shopEvents().map((event) =>
      event.type === 'statement' && event.identity.principal === ORDERS.principal && event.verb === 'SHOW' ? { ...event, verbs: [null] } : event,
    );
    assert.deepEqual(analyzeEvents(events, RULES, GRANTS).findings.unusedWrites, []);
    const direct = { type: 'credential', time: '2030-01-01T00:00:00.000Z', action: 'issue', outcome: 'completed', decision: 'allow', rule: 'shop/orders-rw', identity: { principal: ORDERS.principal }, principal: ORDERS.principal, role: 'shop_rw' };
    assert.deepEqual(analyzeEvents([...shopEvents(), direct], RULES, GRANTS).findings.unusedWrites, []);
  });

  it('a refusal summary counts for every refusal it stands for; unidentified callers are told apart by address', () => {
    const flood = { type: 'connection', time: '2030-01-01T00:00:09.000Z', engine: 'mysql', decision: 'deny', rule: null, reason: 'no client certificate', identity: null, peer: { address: '203.0.113.9', port: 1 }, repeats: { count: 40, since: '2030-01-01T00:00:00.000Z' } };
    const { findings } = analyzeEvents([flood], RULES, GRANTS);
    assert.deepEqual(findings.repeatedDenials, [
      { identity: '(unidentified) 203.0.113.9', count: 41, first: '2030-01-01T00:00:00.000Z', last: '2030-01-01T00:00:09.000Z', causes: [{ rule: '(no rule: default deny or a refusal before policy)', reason: 'no client certificate', count: 41 }] },
    ]);
    assert.equal(findings.unusedRules.length, RULES.length, 'a window without decisions leaves every rule unused');
  });

  it('a rule some of whose callers wrote is not narrowed: a note says who did not', () => {
    const shared = SHOP_POLICY.replace('principals: ["cluster.local/ns/shop/sa/orders"]', 'principals: ["cluster.local/ns/shop/sa/orders", "cluster.local/ns/shop/sa/billing"]');
    const sources = [{ name: 'policy/shop.yaml', text: shared }];
    const rules = policyInventory(sources);
    const events = shopEvents().map((event) => ('rule' in event && event.rule === 'shop/billing-rw' ? { ...event, rule: 'shop/orders-rw' } : event));
    const { findings, usage } = analyzeEvents(events, rules, GRANTS);
    const edits = suggestEdits(findings, rules, usage);
    assert.deepEqual(edits.filter((e) => e.rule === 'shop/orders-rw').map((e) => e.kind), ['note']);
    assert.match(renderPatch(edits, sources), new RegExp(`\\+    # meshgate analyze: ${ORDERS.principal} never wrote through shop_rw .*; consider a rule of their own granting shop_ro`));
    assert.ok(!findings.unusedWrites.some((w) => w.identity === BILLING.principal));
  });

  it('a flow-style operations list is narrowed in place; a rule alone in its document gets a note, not commented out', () => {
    const flow = CATALOG_POLICY.replace(/operations:\n\s+- read\n\s+- write\n/, 'operations: [read, write]  # both\n');
    const sources = [{ name: 'policy/catalog.yaml', text: flow }];
    const rules = policyInventory(sources);
    const patch = renderPatch(suggestEdits(analyzeEvents(shopEvents(), rules, GRANTS).findings, rules, analyzeEvents(shopEvents(), rules, GRANTS).usage), sources);
    assert.match(patch, /^-            operations: \[read, write\]  # both\n\+            # meshgate analyze: nobody under catalog\/catalog-rw wrote .*\n\+            operations: \[read\]  # both$/m);
    const unused = renderPatch(suggestEdits(analyzeEvents([], rules, GRANTS).findings, rules, analyzeEvents([], rules, GRANTS).usage), sources);
    assert.match(unused, /^\+    # meshgate analyze: catalog\/catalog-rw allowed nothing in \? – \?, nor did any rule of its document: remove the document/m);
    assert.doesNotMatch(unused, /^\+\s+# - id/m);
  });

  it('dry runs (action AUDIT): used when they would have decided, never commented out, never a role to suggest; other policy versions noted', () => {
    const text = `${SHOP_POLICY}---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata:
  name: watch
spec:
  action: AUDIT
  rules:
    - id: ci-watch
      from:
        - source:
            namespaces: [ci]
    - id: batch-watch
      from:
        - source:
            namespaces: [batch]
`;
    const sources = [{ name: 'policy/shop.yaml', text }];
    const rules = policyInventory(sources);
    assert.deepEqual(rules.filter((r) => r.dryRun).map((r) => r.id), ['watch/ci-watch', 'watch/batch-watch']);
    const sink = memoryAuditSink();
    const recorder = new AuditRecorder(sink);
    recorder.connection({
      engine: 'mysql', sessionId: 'dry', peer: { address: '10.0.0.1', port: 1 }, tls: null, identity: INTRUDER, clientUser: 'x', database: 'shop',
      decision: 'deny', rule: 'shop-deny/no-ci', reason: 'denied', role: null, upstreamConnectionId: null, error: null,
      policyVersion: 'v-old', dryRun: { rule: 'watch/ci-watch', decision: 'deny', reason: 'would be denied by rule watch/ci-watch' },
    });
    const { findings, usage } = analyzeEvents([...shopEvents(), ...sink.events], rules, GRANTS, { policyVersion: 'v-now' });
    assert.deepEqual(findings.unusedRules.map((u) => [u.rule, u.action, u.dryRun]), [['shop/legacy', 'ALLOW', false], ['watch/batch-watch', 'AUDIT', true]]);
    assert.deepEqual(findings.policyVersions, [{ version: 'v-old', events: 1 }]);
    assert.ok(findings.notes.some((n) => /1 events were decided by other policy versions than the one analyzed \(v-now\): v-old/.test(n)));
    const edits = suggestEdits(findings, rules, usage);
    assert.deepEqual(edits.filter((e) => e.rule === 'watch/batch-watch').map((e) => e.kind), ['note']);
    assert.match(renderPatch(edits, sources), /\+    # meshgate analyze: watch\/batch-watch \(a dry run, action AUDIT\) matched nothing/);
  });
});
