/**
 * `meshgate policy diff` through runCli: the table, --json, --exit-code, usage and load
 * errors, and identities read from an audit log written by the real recorder and sink.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import { AuditRecorder } from '../../../src/audit/recorder.ts';
import { openJsonlAuditSink } from '../../../src/audit/jsonl-sink.ts';
import { runCli } from '../../../src/cli/main.ts';
import type { Identity } from '../../../src/identity/index.ts';
import { captureIO } from '../../helpers/cli.ts';
import { doc, workspace, type Workspace } from './diff-helpers.ts';

const ORDERS = 'cluster.local/ns/shop/sa/orders';
const BASE = doc('orders', 'ALLOW', `[{ id: rw, from: [{ source: { principals: ["${ORDERS}"] } }], to: [{ mariadb: { databases: [shop], role: shop_rw } }] }]`);
const SHOP_NS = doc('shop-ns', 'ALLOW', '[{ id: ns, from: [{ source: { namespaces: [shop] } }], to: [{ mariadb: { databases: [reports], role: reader } }] }]');
const BROKEN = doc('broken', 'ALLOW', '[{ id: x, from: [{ source: { principals: ["a"] } }], to: [{ mariadb: { databases: [shop] } }] }]');

function identity(principal: string, authMethod: Identity['authMethod']): Identity {
  const [trustDomain = '', , namespace = null, , serviceAccount = null] = principal.split('/');
  return { spiffeId: `spiffe://${principal}`, principal, trustDomain, namespace, serviceAccount, authMethod, certificate: { serialNumber: '', notBefore: '', notAfter: '', fingerprint256: '' } };
}

describe('meshgate policy diff', () => {
  let ws: Workspace;
  let audit: string;
  before(async () => {
    ws = await workspace();
    await ws.policyDir('old', { 'a.yaml': BASE });
    await ws.policyDir('new', { 'a.yaml': BASE, 'b.yaml': SHOP_NS });
    await ws.policyDir('broken', { 'a.yaml': BROKEN });
    await ws.policyDir('trial', { 'a.yaml': BASE, 'b.yaml': doc('trial', 'AUDIT', `[{ id: t, from: [{ source: { principals: ["${ORDERS}"] } }], to: [{ mariadb: { databases: [shop] } }] }]`) });
    // The audit as meshgate writes it: the recorder builds the events, the JSONL sink chains them.
    audit = join(ws.dir, 'audit.jsonl');
    const sink = await openJsonlAuditSink(audit);
    const recorder = new AuditRecorder(sink);
    const connection = { engine: 'mysql' as const, peer: { address: '10.0.0.9', port: 4000 }, tls: null, clientUser: 'x', database: 'shop', rule: null, role: null, upstreamConnectionId: null, error: null };
    recorder.connection({ ...connection, sessionId: 's1', identity: identity('cluster.local/ns/shop/sa/cron', 'mtls'), decision: 'deny', reason: 'no rule' });
    recorder.connection({ ...connection, sessionId: 's2', identity: identity('cluster.local/ns/web/sa/web', 'jwt'), decision: 'deny', reason: 'no rule' });
    recorder.connection({ ...connection, sessionId: 's3', identity: null, decision: 'deny', reason: 'no client certificate' });
    recorder.connection({ ...connection, sessionId: 's4', identity: identity('cluster.local/ns/shop/sa/cron', 'mtls'), decision: 'deny', reason: 'no rule' });
    await sink.close();
  });
  after(async () => {
    await ws.cleanup();
  });

  async function run(...argv: string[]) {
    const io = captureIO(ws.dir);
    const code = await runCli(['policy', 'diff', ...argv], io);
    return { code, out: io.stdout, err: io.stderr };
  }

  it('prints each identity with its lines and a summary; exit 0 without --exit-code', async () => {
    const { code, out, err } = await run('old', 'new');
    assert.equal(code, 0);
    assert.deepEqual(err, []);
    assert.deepEqual(out, [
      `${ORDERS}  (named in policy)`,
      '  GAIN  mariadb db reports  deny [no rule matches]  →  allow role reader [shop-ns/ns]',
      'any sa in ns shop  (stand-in: cluster.local/ns/shop/sa/any-sa via mtls)',
      '  GAIN  mariadb db reports  deny [no rule matches]  →  allow role reader [shop-ns/ns]',
      '',
      out.at(-1)!,
    ]);
    assert.match(out.at(-1)!, /^2 identities gain, 0 lose, 0 change access \(2 lines; \d+ identities × \d+ requests tried\)$/);
  });

  it('--exit-code: 1 when anything differs, 0 when nothing does', async () => {
    assert.equal((await run('old', 'new', '--exit-code')).code, 1);
    const same = await run('old', 'old', '--exit-code');
    assert.equal(same.code, 0);
    assert.match(same.out.join('\n'), /^no differences \(\d+ identities × \d+ requests tried\)$/);
  });

  it('--audit: identities the log saw are tried and listed by name, each once', async () => {
    const { code, out } = await run('old', 'new', '--audit', 'audit.jsonl', '--exit-code');
    assert.equal(code, 1);
    const headers = out.filter((line) => !line.startsWith(' ') && line !== '');
    assert.deepEqual(headers.slice(0, 2), ['cluster.local/ns/shop/sa/cron  (seen in audit)', `${ORDERS}  (named in policy)`]);
    assert.equal(out.filter((line) => line.startsWith('cluster.local/ns/shop/sa/cron')).length, 1);
    assert.equal(out.some((line) => line.includes('ns/web/sa/web')), false, 'the web caller is outside ns shop: no line');
    assert.match(out.at(-1)!, /^3 identities gain/);
  });

  it('--json: identities with their changes, the summary, and what was tried', async () => {
    const { code, out } = await run('old', 'new', '--json', '--audit', audit);
    assert.equal(code, 0);
    const json = JSON.parse(out.join('\n')) as { identities: Record<string, unknown>[]; summary: unknown; considered: { identities: number; requests: number; limited: boolean } };
    assert.deepEqual(json.summary, { gain: 3, lose: 0, change: 0, dryRun: 0, lines: 3 });
    assert.ok(json.considered.identities >= 5 && json.considered.requests >= 4 && json.considered.limited === false);
    assert.deepEqual(json.identities[0], {
      label: 'cluster.local/ns/shop/sa/cron',
      principal: 'cluster.local/ns/shop/sa/cron',
      authMethod: 'mtls',
      synthesized: false,
      namedInPolicy: false,
      seenInAudit: true,
      changes: [
        {
          kind: 'gain',
          request: 'mariadb db reports',
          engine: 'mysql',
          database: 'reports',
          direct: false,
          old: { allow: false, ruleId: null, role: null, googleServiceAccount: null, serviceClass: null, allowLocalInfile: false },
          new: { allow: true, ruleId: 'shop-ns/ns', role: 'reader', googleServiceAccount: null, serviceClass: 'default', allowLocalInfile: false },
          changed: [],
        },
      ],
    });
  });

  it('a new dry-run rule is a DRY-RUN line with what it would decide; --exit-code counts it', async () => {
    const { code, out } = await run('old', 'trial', '--exit-code');
    assert.equal(code, 1);
    assert.deepEqual(out.slice(0, 2), [`${ORDERS}  (named in policy)`, '  DRY-RUN  mariadb db shop  no dry run  →  would deny [trial/t]']);
    assert.match(out.at(-1)!, /^0 identities gain, 0 lose, 0 change access; 1 with dry runs that would decide otherwise \(1 line; /);
  });

  it('usage mistakes exit 2 with one line', async () => {
    for (const argv of [['old'], ['old', 'new', 'more'], ['old', 'new', '--nope']]) {
      const { code, err } = await run(...argv);
      assert.equal(code, 2, argv.join(' '));
      assert.equal(err.length, 1);
      assert.match(err[0]!, /^meshgate policy diff: .*\(see 'meshgate policy diff --help'\)$/);
    }
  });

  it('a policy that does not load exits 1 with the loader’s message, with or without --exit-code', async () => {
    for (const extra of [[], ['--exit-code']]) {
      const { code, out, err } = await run('old', 'broken', ...extra);
      assert.equal(code, 1);
      assert.deepEqual(out, []);
      assert.match(err.join('\n'), /MG_POLICY_INVALID.*broken\/a\.yaml doc 1: spec\.rules\[0\]\.to\[0\]\.mariadb\.role: required for ALLOW rules/);
    }
    const missing = await run('old', 'nowhere');
    assert.equal(missing.code, 1);
    assert.match(missing.err[0]!, /cannot read policy directory nowhere \(ENOENT\)/);
    const noLog = await run('old', 'new', '--audit', 'missing.jsonl');
    assert.equal(noLog.code, 1);
    assert.match(noLog.err[0]!, /MG_AUDIT_NOT_FOUND/);
  });
});
