/**
 * `meshgate probe --firestore` (issue 13, point 6) through a Firestore-only meshgate in front
 * of Google's emulator: the GetDocument goes through with the probe's trace id and its rpc
 * event names the same identity and trace; a caller policy does not let read is a broken link.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { exitOf, spawnCli } from '../../helpers/cli.ts';
import { FIRESTORE_POLICY, FIRESTORE_SKIP, FIRESTORE_WORKLOADS, startFirestoreFixture, type FirestoreFixture } from '../../helpers/firestore.ts';

const PROJECT = 'mg-it-probe';

interface Report {
  traceId: string;
  links: { link: string; ok: boolean | null; detail: string }[];
}

describe('meshgate probe --firestore (official emulator)', { skip: FIRESTORE_SKIP, timeout: 120_000 }, () => {
  let fx: FirestoreFixture;
  before(async () => {
    fx = await startFirestoreFixture({
      name: `fsprobe${randomBytes(3).toString('hex')}`,
      project: PROJECT,
      workloads: FIRESTORE_WORKLOADS,
      policy: FIRESTORE_POLICY,
      config: (config) => void (config.metrics = { listen: '127.0.0.1:0' }),
    });
  });
  after(async () => fx?.stop());

  const probe = async (workload: string, document: string) => {
    const files = fx.harness.clients[workload]!;
    const child = spawnCli(['probe', '--firestore', `localhost:${fx.port}`, '--project', PROJECT, '--document', document, '--cert', files.cert, '--key', files.key, '--ca', files.ca, '--audit', fx.harness.auditFile, '--metrics', `http://127.0.0.1:${fx.harness.meshgate.metricsPort}/metrics`, '--timeout', '5s', '--json']);
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    const { code, stderr } = await exitOf(child);
    return { code, stderr, report: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Report };
  };

  it('the call reaches Firestore; its rpc event carries the identity and the trace id, its latency bucket the trace id', async () => {
    const { code, stderr, report } = await probe('orders', 'orders/meshgate-probe');
    assert.equal(code, 0, `${stderr}\n${JSON.stringify(report, null, 2)}`);
    assert.deepEqual(report.links.map((l) => [l.link, l.ok]), [['firestore', true], ['firestore-audit', true], ['firestore-span', null], ['firestore-metrics', true]]);
    const event = (await fx.harness.readAudit()).find((e) => e['type'] === 'rpc' && e['traceId'] === report.traceId);
    assert.equal((event?.['identity'] as { spiffeId: string } | undefined)?.spiffeId, FIRESTORE_WORKLOADS.orders);
  });

  it('a document policy does not let the probe read: the firestore link is broken', async () => {
    const { code, report } = await probe('analytics', 'orders/meshgate-probe');
    assert.equal(code, 1);
    assert.equal(report.links.find((l) => l.link === 'firestore')?.ok, false);
    assert.match(report.links.find((l) => l.link === 'firestore')!.detail, /PERMISSION_DENIED/);
  });
});
