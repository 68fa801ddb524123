/**
 * `policy diff` analysis (diffPolicies) on small policy directories written to a temp dir:
 * who gains, loses or changes access, and which stand-ins exercise patterns.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { diffPolicies, MAX_COMBINED, type DiffLine, type PolicyDiff } from '../../../src/policy/index.ts';
import { doc, workspace, type Workspace } from './diff-helpers.ts';

const ORDERS = 'cluster.local/ns/shop/sa/orders';

/** `label: KIND request old-rule → new-rule`, one string per line, for compact assertions. */
function lines(diff: PolicyDiff): string[] {
  const show = (l: DiffLine) => `${l.kind} ${l.request.label} ${l.old.ruleId ?? '-'} -> ${l.new.ruleId ?? '-'}`;
  return diff.identities.flatMap(({ identity, lines: found }) => found.map((l) => `${identity.label}: ${show(l)}`));
}

const allowOrders = (role: string, extra = '') =>
  doc('orders', 'ALLOW', `[{ id: rw, from: [{ source: { principals: ["${ORDERS}"] } }], to: [{ mariadb: { databases: [shop], role: ${role}${extra} } }] }]`);

describe('policy diff', () => {
  let ws: Workspace;
  before(async () => {
    ws = await workspace();
  });
  after(async () => {
    await ws.cleanup();
  });

  it('a new ALLOW is a gain for the principal it names, on the database it names, with the new rule', async () => {
    const old = await ws.load('gain-old', { 'a.yaml': doc('base', 'ALLOW', `[{ id: other, from: [{ source: { principals: ["cluster.local/ns/web/sa/web"] } }], to: [{ mariadb: { databases: [web], role: web } }] }]`) });
    const next = await ws.load('gain-new', { 'a.yaml': doc('base', 'ALLOW', `[{ id: other, from: [{ source: { principals: ["cluster.local/ns/web/sa/web"] } }], to: [{ mariadb: { databases: [web], role: web } }] }]`), 'b.yaml': allowOrders('shop_rw') });
    const diff = diffPolicies(old, next);
    assert.deepEqual(lines(diff), [`${ORDERS}: gain mariadb db shop - -> orders/rw`]);
    const [entry] = diff.identities;
    assert.equal(entry?.identity.synthesized, false);
    assert.equal(entry?.identity.namedInPolicy, true);
    assert.deepEqual(entry?.lines[0]?.new, { allow: true, ruleId: 'orders/rw', role: 'shop_rw', googleServiceAccount: null, serviceClass: 'default', allowLocalInfile: false });
    assert.deepEqual(diff.summary, { gain: 1, lose: 0, change: 0, dryRun: 0, lines: 1 });
  });

  it('removing it is a loss; swapping the sides swaps gain and loss', async () => {
    const withIt = await ws.load('lose-old', { 'b.yaml': allowOrders('shop_rw') });
    const without = await ws.load('lose-new', { 'b.yaml': doc('orders', 'ALLOW', `[{ id: rw, from: [{ source: { principals: ["${ORDERS}"] } }], to: [{ mariadb: { databases: [web], role: shop_rw } }] }]`) });
    const diff = diffPolicies(withIt, without);
    assert.deepEqual(lines(diff), [`${ORDERS}: lose mariadb db shop orders/rw -> -`, `${ORDERS}: gain mariadb db web - -> orders/rw`]);
    assert.deepEqual(diff.summary, { gain: 1, lose: 1, change: 0, dryRun: 0, lines: 2 });
    assert.deepEqual(lines(diffPolicies(without, withIt)), [`${ORDERS}: gain mariadb db shop - -> orders/rw`, `${ORDERS}: lose mariadb db web orders/rw -> -`]);
  });

  it('another role, LOCAL INFILE or service class is a change naming what changed; the same grant by another rule is none', async () => {
    const old = await ws.load('role-old', { 'b.yaml': allowOrders('shop_reader') });
    const next = await ws.load('role-new', { 'b.yaml': allowOrders('shop_writer', ', allowLocalInfile: true') });
    const diff = diffPolicies(old, next);
    assert.deepEqual(lines(diff), [`${ORDERS}: change mariadb db shop orders/rw -> orders/rw`]);
    assert.deepEqual(diff.identities[0]?.lines[0]?.changed, ['role', 'allowLocalInfile']);
    assert.deepEqual(diff.summary, { gain: 0, lose: 0, change: 1, dryRun: 0, lines: 1 });
    const renamed = await ws.load('role-renamed', { 'b.yaml': doc('orders', 'ALLOW', `[{ id: read, from: [{ source: { principals: ["${ORDERS}"] } }], to: [{ mariadb: { databases: [shop], role: shop_reader } }] }]`) });
    assert.deepEqual(lines(diffPolicies(old, renamed)), []);
    const batch = await ws.load('role-class', { 'b.yaml': doc('orders', 'ALLOW', `[{ id: rw, serviceClass: batch, from: [{ source: { principals: ["${ORDERS}"] } }], to: [{ mariadb: { databases: [shop], role: shop_reader } }] }]`) });
    assert.deepEqual(diffPolicies(old, batch).identities[0]?.lines[0]?.changed, ['serviceClass']);
  });

  it('a DENY for a namespace beats the ALLOW: the stand-in for that namespace loses, named by the deny rule', async () => {
    const allow = doc('staging', 'ALLOW', '[{ id: all, from: [{ source: { namespaces: [staging] } }], to: [{ mariadb: { databases: [app], role: app_rw } }] }]');
    const old = await ws.load('deny-old', { 'a.yaml': allow });
    const next = await ws.load('deny-new', { 'a.yaml': allow, 'b.yaml': doc('no-staging', 'DENY', '[{ id: staging, from: [{ source: { namespaces: [staging] } }] }]') });
    const diff = diffPolicies(old, next);
    assert.deepEqual(lines(diff), ['any sa in ns staging: lose mariadb db app staging/all -> no-staging/staging']);
    const who = diff.identities[0]!.identity;
    assert.equal(who.synthesized, true);
    assert.equal(who.subject.namespace, 'staging');
    assert.equal(diff.identities[0]!.lines[0]!.new.allow, false);
  });

  it('principal globs and namespace patterns get stand-ins that match them, and a caller outside every named namespace', async () => {
    const old = await ws.load('glob-old', { 'a.yaml': doc('ci', 'ALLOW', '[{ id: eu, from: [{ source: { namespaces: ["team-*"] } }], to: [{ mariadb: { databases: ["ci_*"], role: ci } }] }]') });
    const next = await ws.load('glob-new', {
      'a.yaml': doc('ci', 'ALLOW', '[{ id: eu, from: [{ source: { namespaces: ["team-*"] } }], to: [{ mariadb: { databases: ["ci_*"], role: ci } }] }, { id: build, from: [{ source: { principals: ["cluster.local/ns/ci/sa/build-*"] } }], to: [{ mariadb: { databases: ["ci_*"], role: ci_build } }] }]'),
    });
    const diff = diffPolicies(old, next);
    assert.deepEqual(lines(diff), ['any caller with principals cluster.local/ns/ci/sa/build-*: gain mariadb db ci_x - -> ci/build']);
    assert.equal(diff.identities[0]!.identity.subject.principal, 'cluster.local/ns/ci/sa/build-x');
    assert.ok(diff.considered.identities >= 4, 'team-x, no named namespace, outside the layout, build-*');
  });

  it('token claims: the jwt stand-in carrying the claims gains; certificate callers do not', async () => {
    const old = await ws.load('claims-old', { 'a.yaml': allowOrders('shop_rw') });
    const next = await ws.load('claims-new', {
      'a.yaml': allowOrders('shop_rw'),
      'b.yaml': doc('deploy', 'ALLOW', '[{ id: prod, from: [{ source: { claims: { environment: [production], groups: ["db-*"] } } }], to: [{ mariadb: { databases: [shop], role: migrator } }] }]'),
    });
    const diff = diffPolicies(old, next);
    assert.equal(diff.identities.length, 1);
    const { identity, lines: found } = diff.identities[0]!;
    assert.equal(identity.subject.authMethod, 'jwt');
    assert.deepEqual(identity.subject.claims, { environment: 'production', groups: 'db-x' });
    assert.match(identity.label, /^any caller with claim environment in production and claim groups in db-\* \(via jwt, claims environment="production" groups="db-x"\)$/);
    assert.deepEqual(found.map((l) => `${l.kind} ${l.request.label}`), ['gain mariadb db shop']);
  });

  it('dropping one value of a claims or authMethods list is a loss for a caller with that value', async () => {
    const rule = (values: string, methods: string) =>
      doc('ci', 'ALLOW', `[{ id: env, from: [{ source: { claims: { env: [${values}] } } }], to: [{ mariadb: { databases: [ci], role: ci } }] }, { id: m, from: [{ source: { namespaces: [shop], authMethods: [${methods}] } }], to: [{ mariadb: { databases: [shop], role: shop } }] }]`);
    const diff = diffPolicies(await ws.load('values-old', { 'a.yaml': rule('prod, staging', 'mtls, xfcc') }), await ws.load('values-new', { 'a.yaml': rule('prod', 'mtls') }));
    const lost = diff.identities.map((i) => `${i.identity.subject.namespace}/${i.identity.subject.authMethod}/${JSON.stringify(i.identity.subject.claims ?? null)}: ${i.lines.map((l) => `${l.kind} ${l.request.label}`).join(', ')}`);
    assert.deepEqual(lost, ['other/jwt/{"env":"staging"}: lose mariadb db ci', 'shop/xfcc/null: lose mariadb db shop']);
  });

  it('Firestore read → read, write: write on the pattern’s document and collection is gained; admin is not', async () => {
    const fs = (ops: string) =>
      doc('orders-fs', 'ALLOW', `[{ id: fs, from: [{ source: { principals: ["${ORDERS}"] } }], to: [{ firestore: { collections: ["orders/*"], operations: [${ops}], serviceAccount: orders@p.iam.gserviceaccount.com } }] }]`);
    const diff = diffPolicies(await ws.load('fs-old', { 'a.yaml': fs('read') }), await ws.load('fs-new', { 'a.yaml': fs('read, write') }));
    assert.deepEqual(lines(diff), [`${ORDERS}: gain firestore write collection orders - -> orders-fs/fs`, `${ORDERS}: gain firestore write doc orders/any-id - -> orders-fs/fs`]);
    assert.equal(diff.identities[0]!.lines[0]!.new.googleServiceAccount, 'orders@p.iam.gserviceaccount.com');
  });

  it('identities seen in the audit are tried by name, with their auth method', async () => {
    const old = await ws.load('seen-old', { 'a.yaml': allowOrders('shop_rw') });
    const next = await ws.load('seen-new', { 'a.yaml': allowOrders('shop_rw'), 'b.yaml': doc('shop-ns', 'ALLOW', '[{ id: ns, from: [{ source: { namespaces: [shop], authMethods: [xfcc] } }], to: [{ mariadb: { databases: [shop], role: shop_ro } }] }]') });
    const seen = [{ principal: 'cluster.local/ns/shop/sa/web', authMethod: 'xfcc' }, { principal: 'cluster.local/ns/shop/sa/cron', authMethod: 'mtls' }];
    const diff = diffPolicies(old, next, { seen });
    const byName = diff.identities.find((i) => i.identity.subject.principal === 'cluster.local/ns/shop/sa/web');
    assert.ok(byName, 'the seen xfcc caller gains');
    assert.equal(byName.identity.label, 'cluster.local/ns/shop/sa/web (via xfcc)');
    assert.deepEqual([byName.identity.seenInAudit, byName.identity.synthesized], [true, false]);
    assert.equal(diff.identities.some((i) => i.identity.subject.principal === 'cluster.local/ns/shop/sa/cron'), false, 'mtls is not in authMethods');
  });

  it('direct credentials are compared apart from sessions', async () => {
    const old = await ws.load('direct-old', { 'a.yaml': allowOrders('shop_rw') });
    const next = await ws.load('direct-new', { 'a.yaml': allowOrders('shop_rw', ', direct: true') });
    assert.deepEqual(lines(diffPolicies(old, next)), [`${ORDERS}: gain mariadb direct creds db shop - -> orders/rw`]);
  });

  it('dry runs (action AUDIT): a new trial DENY over what is allowed is a dry-run line; one over what is denied anyway is none', async () => {
    const allow = doc('staging', 'ALLOW', '[{ id: all, from: [{ source: { namespaces: [staging] } }], to: [{ mariadb: { databases: [app], role: app_rw } }] }]');
    const old = await ws.load('dry-old', { 'a.yaml': allow });
    const next = await ws.load('dry-new', { 'a.yaml': allow, 'b.yaml': doc('trial', 'AUDIT', '[{ id: no-staging, from: [{ source: { namespaces: [staging] } }], to: [{ mariadb: { databases: [app, other] } }] }]') });
    const diff = diffPolicies(old, next);
    assert.deepEqual(lines(diff), ['any sa in ns staging: dry-run mariadb db app staging/all -> staging/all']);
    const line = diff.identities[0]!.lines[0]!;
    assert.deepEqual(line.dryRun?.old, null);
    assert.deepEqual(line.dryRun?.new, { allow: false, ruleId: 'trial/no-staging', role: null, googleServiceAccount: null, serviceClass: null, allowLocalInfile: false });
    assert.deepEqual(diff.summary, { gain: 0, lose: 0, change: 0, dryRun: 1, lines: 1 });
    // Switched on: the dry run is gone and the loss is enforced.
    const enforced = await ws.load('dry-enforced', { 'a.yaml': allow, 'b.yaml': doc('trial', 'DENY', '[{ id: no-staging, from: [{ source: { namespaces: [staging] } }], to: [{ mariadb: { databases: [app, other] } }] }]') });
    assert.deepEqual(lines(diffPolicies(next, enforced)), ['any sa in ns staging: lose mariadb db app staging/all -> trial/no-staging', 'any sa in ns staging: dry-run mariadb db app staging/all -> trial/no-staging']);
  });

  it('bounded: past MAX_COMBINED combined callers, named principals are not combined with every claim, and it says so', async () => {
    const principals = Array.from({ length: 210 }, (_, i) => `"cluster.local/ns/n${i % 7}/sa/s${i}"`).join(', ');
    const claimRules = Array.from({ length: 100 }, (_, i) => `{ id: c${i}, from: [{ source: { claims: { repo: ["acme/r${i}"] } } }], to: [{ mariadb: { databases: [ci], role: ci } }] }`).join(', ');
    const text = doc('many', 'ALLOW', `[{ id: p, from: [{ source: { principals: [${principals}] } }], to: [{ mariadb: { databases: [app], role: app } }] }, ${claimRules}]`);
    const policy = await ws.load('limit', { 'a.yaml': text });
    const diff = diffPolicies(policy, policy);
    assert.equal(diff.considered.limited, true);
    assert.ok(diff.considered.identities <= 210 + MAX_COMBINED + 200, String(diff.considered.identities));
    const small = await ws.load('limit-small', { 'a.yaml': allowOrders('shop_rw') });
    assert.equal(diffPolicies(small, small).considered.limited, false);
  });

  it('output is sorted and the same on every run: named callers first, then stand-ins', async () => {
    const policy = doc('many', 'ALLOW', `[{ id: a, from: [{ source: { principals: ["cluster.local/ns/z/sa/z", "cluster.local/ns/a/sa/a"] } }, { source: { namespaces: [m, b] } }], to: [{ mariadb: { databases: [d2, d1], role: r } }] }]`);
    const old = await ws.load('sort-old', { 'a.yaml': doc('none', 'DENY', '[{ id: x, from: [{ source: { namespaces: [nobody] } }] }]') });
    const next = await ws.load('sort-new', { 'a.yaml': policy });
    const first = lines(diffPolicies(old, next));
    assert.deepEqual(first, lines(diffPolicies(old, next)));
    assert.deepEqual(
      diffPolicies(old, next).identities.map((i) => i.identity.label),
      ['cluster.local/ns/a/sa/a', 'cluster.local/ns/z/sa/z', 'any sa in ns b', 'any sa in ns m'],
    );
    assert.deepEqual(first.slice(0, 2), ['cluster.local/ns/a/sa/a: gain mariadb db d1 - -> many/a', 'cluster.local/ns/a/sa/a: gain mariadb db d2 - -> many/a']);
  });
});
