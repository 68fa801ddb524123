/**
 * `meshgate probe` (issue 13, point 6) against a real meshgate in front of the real MariaDB:
 * every link holds when they agree, and each broken link is named — the tag MariaDB saw
 * (tagging off), the audit event (a log that does not have it), the statement itself (a
 * probe identity policy does not allow).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cleanup } from '../helpers/cleanup.ts';
import { exitOf, spawnCli } from '../helpers/cli.ts';
import { startHarness, STANDARD_WORKLOADS, type Harness } from '../helpers/meshgate.ts';
import { serviceMissing } from '../helpers/services.ts';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.ts';

const missing = await serviceMissing('mariadb');

interface Report {
  traceId: string;
  identity: string;
  links: { link: string; ok: boolean | null; detail: string }[];
}

async function probe(h: Harness, workload: string, extra: string[] = []): Promise<{ code: number | null; report: Report; stderr: string }> {
  const files = h.clients[workload]!;
  const child = spawnCli(['probe', '--mysql', `127.0.0.1:${h.port}`, '--database', h.database, '--cert', files.cert, '--key', files.key, '--ca', files.ca, '--timeout', '5s', '--json', ...extra]);
  const chunks: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  const { code, stderr } = await exitOf(child);
  return { code, report: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Report, stderr };
}

const linkOf = (report: Report, name: string) => report.links.find((l) => l.link === name);

describe('meshgate probe', { skip: missing }, () => {
  let h: Harness;
  let untagged: Harness;
  let receiver: OtlpReceiver;
  before(async () => {
    receiver = await startOtlpReceiver();
    h = await startHarness({
      name: 'probe',
      workloads: STANDARD_WORKLOADS,
      credentials: 'dynamic',
      config: (c) => {
        c.tracing = { otlp: { endpoint: receiver.endpoint } };
        c.admin = { host: '127.0.0.1', port: 0, principals: [STANDARD_WORKLOADS.orders] };
        c.metrics = { listen: '127.0.0.1:0' };
      },
    });
    untagged = await startHarness({ name: 'probe_untag', workloads: STANDARD_WORKLOADS, config: (c) => void (c.audit = { ...c.audit, tagStatements: false }) });
  });
  after(async () => cleanup(() => h?.stop(), () => untagged?.stop(), () => receiver?.close()));
  const admin = () => ['--admin', `https://localhost:${h.meshgate.adminPort}`];
  const metrics = () => ['--metrics', `http://127.0.0.1:${h.meshgate.metricsPort}/metrics`];

  it('every link holds: MariaDB ran it, saw the tag with identity and trace, the audit has it, the span too', async () => {
    const { code, report, stderr } = await probe(h, 'analytics', ['--audit', h.auditFile, ...admin(), ...metrics()]);
    assert.equal(code, 0, `${stderr}\n${JSON.stringify(report, null, 2)}`);
    assert.equal(report.identity, STANDARD_WORKLOADS.analytics);
    assert.match(report.traceId, /^[0-9a-f]{32}$/);
    for (const name of ['mariadb', 'tag', 'audit', 'span', 'metrics']) assert.equal(linkOf(report, name)?.ok, true, name);
    assert.match(linkOf(report, 'metrics')!.detail, new RegExp(`meshgate_statement_duration_seconds counted it, bucket le=\\S+ names trace ${report.traceId}`));
    const event = (await h.readAudit()).find((e) => e['type'] === 'statement' && e['traceId'] === report.traceId);
    assert.equal((event?.['identity'] as { spiffeId: string }).spiffeId, STANDARD_WORKLOADS.analytics, 'the probe found what is there');
  });

  it('without --audit and --admin those links are skipped, not passed', async () => {
    const { code, report } = await probe(h, 'analytics');
    assert.equal(code, 0);
    assert.equal(linkOf(report, 'audit')?.ok, null);
    assert.equal(linkOf(report, 'span')?.ok, null);
    assert.equal(linkOf(report, 'metrics')?.ok, null);
  });

  it('metrics of another replica: the metrics link is broken, saying the trace is not there', async () => {
    // Another replica's exposition: SELECTs counted, under other traces. (Both harnesses of this
    // file share one process, and so the diagnostics channels metrics listen on: a second
    // meshgate here would count the probe's statement as well.)
    const other = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/openmetrics-text; version=1.0.0; charset=utf-8' });
      res.end(`# TYPE meshgate_statement_duration_seconds histogram\nmeshgate_statement_duration_seconds_bucket{engine="mysql",verb="SELECT",outcome="completed",le="0.001"} 1 # {trace_id="${'ab'.repeat(16)}"} 0.0004 1765000000\n# EOF\n`);
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    try {
      const { code, report } = await probe(h, 'analytics', ['--metrics', `http://127.0.0.1:${(other.address() as AddressInfo).port}/metrics`, '--timeout', '1s']);
      assert.equal(code, 1, JSON.stringify(report));
      assert.equal(linkOf(report, 'mariadb')?.ok, true);
      assert.equal(linkOf(report, 'metrics')?.ok, false);
      assert.match(linkOf(report, 'metrics')!.detail, new RegExp(`no bucket of meshgate_statement_duration_seconds names trace ${report.traceId}: another replica`));
    } finally {
      other.close();
    }
  });

  it('an admin API that does not answer: the span link is broken and says so', async () => {
    const { report } = await probe(untagged, 'analytics', ['--admin', 'https://localhost:1']);
    assert.equal(linkOf(report, 'span')?.ok, false, 'an admin API that does not answer is a broken link');
    assert.match(linkOf(report, 'span')!.detail, /cannot ask meshgate's admin API/);
  });

  it('tagging off: the tag link is broken, and the exit status says so', async () => {
    const { code, report } = await probe(untagged, 'analytics', ['--audit', untagged.auditFile]);
    assert.equal(code, 1);
    assert.equal(linkOf(report, 'mariadb')?.ok, true);
    assert.equal(linkOf(report, 'tag')?.ok, false);
    assert.match(linkOf(report, 'tag')!.detail, /does not start with meshgate's tag/);
    assert.equal(linkOf(report, 'audit')?.ok, true, 'the other links are still checked');
  });

  it('an audit log without the event: the audit link is broken and names the trace id', async () => {
    const elsewhere = join(h.dir, 'other-audit.jsonl');
    await writeFile(elsewhere, '');
    const { code, report } = await probe(h, 'analytics', ['--audit', elsewhere, '--timeout', '1s']);
    assert.equal(code, 1);
    assert.equal(linkOf(report, 'audit')?.ok, false);
    assert.ok(linkOf(report, 'audit')!.detail.includes(report.traceId));
  });

  it('an identity policy refuses: the MariaDB link is broken, saying what to check', async () => {
    const { code, report } = await probe(h, 'staging', ['--audit', h.auditFile]);
    assert.equal(code, 1);
    assert.equal(linkOf(report, 'mariadb')?.ok, false);
    assert.match(linkOf(report, 'mariadb')!.detail, /policy allows/);
    assert.equal(linkOf(report, 'audit')?.ok, null);
  });
});
