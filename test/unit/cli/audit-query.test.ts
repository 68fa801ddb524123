/**
 * `meshgate audit query` as a user runs it (in-process): a table and JSON lines over a
 * rotated log, --limit, --digest, --config, what a terminal is spared, what reaches stderr,
 * and the exit codes and MG_ codes of every mistake.
 */
import assert from 'node:assert/strict';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../../../src/cli/main.ts';
import { captureIO } from '../../helpers/cli.ts';
import { IDENTITY, statementEvent, tempDir } from '../audit/helpers.ts';
import { MINUTE, T0, writeRotatedLog } from '../audit/query/helpers.ts';

const ANALYTICS = { ...IDENTITY, spiffeId: 'spiffe://example.org/ns/data/sa/analytics', principal: 'example.org/ns/data/sa/analytics', namespace: 'data' };
const at = (minute: number) => new Date(T0 + minute * MINUTE).toISOString();

const EVENTS = [
  ...Array.from({ length: 40 }, (_, i) =>
    statementEvent(i, { time: at(i), statement: `SELECT * FROM orders WHERE id = ${i} /* ${'x'.repeat(150)} */`, durationUs: 1000 + i, traceId: (i + 1).toString(16).padStart(32, '0') }),
  ),
  statementEvent(40, { time: at(40), identity: ANALYTICS, verb: 'DELETE', statement: "DELETE FROM orders WHERE note = '\u001b[31mred\u001b[0m'", rowsAffected: 3, durationUs: 90_000 }),
  statementEvent(41, { time: at(41), identity: ANALYTICS, decision: 'deny', outcome: 'failed', verb: 'DROP', statement: 'DROP TABLE orders', rule: null, error: { code: 'MG_POLICY_DENIED', message: 'no' }, durationUs: 0 }),
];

async function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const io = captureIO();
  const code = await runCli(['audit', 'query', ...argv], io);
  return { code, out: io.stdout, err: io.stderr };
}

describe('meshgate audit query', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let logDir: string;
  let files: string[];
  before(async () => {
    tmp = await tempDir();
    logDir = join(tmp.dir, 'logs');
    await mkdir(logDir);
    files = await writeRotatedLog(logDir, EVENTS);
  });
  after(() => tmp.cleanup());

  it('prints a table of every event of the rotated log, oldest first, its statements cut and cleaned', async () => {
    assert.ok(files.length >= 3, files.join(', '));
    const { code, out, err } = await run([logDir]);
    assert.equal(code, 0, err.join('\n'));
    assert.deepEqual(err, []);
    assert.equal(out.length, 1 + EVENTS.length);
    assert.match(out[0]!, /^TIME +TYPE +IDENTITY +DECISION +RULE +OUTCOME +MS +ROWS +TRACE +TARGET +TEXT$/);
    assert.match(out[1]!, /^2025-06-01T00:00:00\.000Z {2}statement {2}example\.org\/ns\/shop\/sa\/orders +allow +orders-read +completed +1\.0 +1\/0 {2}000000000000 {2}shop +SELECT \* FROM orders WHERE id = 0 \/\* x+…$/);
    assert.ok(out.every((line) => !line.includes('\u001b')), 'no escape sequence reaches the terminal');
    const denied = out.at(-1)!;
    assert.match(denied, /analytics {2}deny +- +failed +0\.0 .* \[MG_POLICY_DENIED\] DROP TABLE orders$/);
    // Aligned: every row starts its TEXT where the titles say.
    const textAt = out[0]!.indexOf('TEXT');
    assert.ok(out.slice(1).every((line) => /\S/.test(line[textAt]!) && line[textAt - 1] === ' '), 'columns line up');
  });

  it('--json: each event as stored, one a line; --limit stops at N', async () => {
    const { code, out } = await run([join(logDir, 'audit.jsonl'), '--json', '--limit', '3']);
    assert.equal(code, 0);
    const events = out.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(events.map((e) => e['sessionId']), ['s-0', 's-1', 's-2']);
    assert.equal(events[0]!['seq'], 1);
    assert.match(String(events[0]!['hash']), /^[0-9a-f]{64}$/);
  });

  it('filters: identity glob, decision, trace prefix, verb, time window', async () => {
    const ids = async (argv: string[]) => (await run([logDir, '--json', ...argv])).out.map((l) => (JSON.parse(l) as { sessionId: string }).sessionId);
    assert.deepEqual(await ids(['--identity', '*/sa/analytics']), ['s-40', 's-41']);
    assert.deepEqual(await ids(['--identity', '*/sa/analytics', '--decision', 'deny']), ['s-41']);
    assert.deepEqual(await ids(['--trace', '00000000000000000000000000000010']), ['s-15']);
    assert.deepEqual(await ids(['--verb', 'delete,drop']), ['s-40', 's-41']);
    assert.deepEqual(await ids(['--since', at(38), '--until', at(40)]), ['s-38', 's-39']);
  });

  it('nothing matches: exit 0, nothing on stdout, a line on stderr', async () => {
    const { code, out, err } = await run([logDir, '--identity', 'nobody']);
    assert.equal(code, 0);
    assert.deepEqual(out, []);
    assert.match(err.join('\n'), /^no events in .*audit\.jsonl match$/);
  });

  it('--digest: by total time; --json gives every figure and every identity', async () => {
    const table = await run([logDir, '--digest']);
    assert.equal(table.code, 0);
    assert.match(table.out[0]!, /^ID +COUNT +FAILED +TOTAL_MS +AVG_MS +P99_MS +ROWS +AFFECTED +IDENTITIES +FINGERPRINT$/);
    assert.match(table.out[1]!, /^[0-9a-f]{16} +1 +0 +90\.0 +90\.0 +90\.0 +1 +3 +example\.org\/ns\/data\/sa\/analytics +delete from orders where note = \?$/);
    assert.match(table.out[2]!, /^[0-9a-f]{16} +40 +0 +40\.8 +1\.0 +1\.0 +40 +0 +example\.org\/ns\/shop\/sa\/orders +select \* from orders where id = \?$/);
    const json = (await run([logDir, '--digest', '--json', '--verb', 'select'])).out.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(json.length, 1);
    assert.deepEqual(json[0]!['identities'], [{ identity: IDENTITY.principal, count: 40 }]);
    assert.equal(json[0]!['totalUs'], 40 * 1000 + (39 * 40) / 2);
    // The ID of a digest row filters the events of that digest.
    const id = /^([0-9a-f]{16})/.exec(table.out[2]!)![1]!;
    assert.equal((await run([logDir, '--json', '--fingerprint', id])).out.length, 40);
  });

  it('--config reads the log its audit.file names', async () => {
    const root = join(tmp.dir, 'config');
    await mkdir(join(root, 'policy'), { recursive: true });
    await writeFile(join(root, 'bundle.pem'), '');
    const config = join(root, 'meshgate.yaml');
    await writeFile(
      config,
      [
        'trust: { bundles: [bundle.pem], trustDomains: [example.org] }',
        "firestore: { tls: plaintext, project: p, upstream: { emulator: '127.0.0.1:8080' } }",
        'policy: { dir: policy }',
        'state: { embedded: { dir: state } }',
        `audit: { file: ${join(logDir, 'audit.jsonl')} }`,
      ].join('\n'),
    );
    const { code, out } = await run(['--config', config, '--json', '--type', 'statement', '--limit', '1']);
    assert.equal(code, 0);
    assert.equal(out.length, 1);
  });

  it('says what it passed over, on stderr, after the results', async () => {
    const damaged = join(tmp.dir, 'damaged');
    await mkdir(damaged);
    await writeFile(join(damaged, 'audit.jsonl'), JSON.stringify({ ...EVENTS[0], seq: 1 }) + '\nnot an event\n');
    await appendFile(join(damaged, 'audit.jsonl'), '{"torn":');
    const { code, out, err } = await run([damaged, '--json']);
    assert.equal(code, 0);
    assert.equal(out.length, 1);
    assert.deepEqual(err, [
      "note: 1 line of audit.jsonl (the first at line 2) is not a JSON event: passed over; 'meshgate audit verify' says what happened to it",
      'note: the last line of audit.jsonl is incomplete (being written, or cut by a crash): passed over',
    ]);
  });

  const mistakes: [string, string[], number, RegExp][] = [
    ['no log named', [], 2, /^meshgate audit query: \[MG_USAGE\] the audit FILE or DIR is required .*\(see 'meshgate audit query --help'\)$/],
    ['two logs named', ['a', 'b'], 2, /\[MG_USAGE\] unexpected argument 'b'/],
    ['a log that is not there', ['/nonexistent/audit.jsonl'], 1, /^meshgate audit query: \[MG_AUDIT_NOT_FOUND\] no audit log at \/nonexistent\/audit\.jsonl: no such file/],
    ['a bad time', ['LOG', '--since', 'last tuesday'], 2, /\[MG_USAGE\] --since "last tuesday" is not a time: give an RFC 3339 time/],
    ['a bad decision', ['LOG', '--decision', 'permit'], 2, /\[MG_USAGE\] --decision "permit" is not one of allow, deny/],
    ['a bad limit', ['LOG', '--limit', '0'], 2, /\[MG_USAGE\] --limit "0" is not a positive whole number/],
    ['a digest of logins', ['LOG', '--digest', '--type', 'connection'], 2, /\[MG_USAGE\] --digest groups statement and rpc events/],
    ['an unknown option', ['LOG', '--who', 'x'], 2, /unknown option '--who'/],
  ];
  for (const [what, argv, exit, message] of mistakes) {
    it(`${what}: exit ${exit}, one line on stderr`, async () => {
      const { code, out, err } = await run(argv.map((a) => (a === 'LOG' ? logDir : a)));
      assert.equal(code, exit);
      assert.deepEqual(out, []);
      assert.equal(err.length, 1, err.join('\n'));
      assert.match(err[0]!, message);
    });
  }

  it('--help names every filter and the digest; the audit group lists the command', async () => {
    const io = captureIO();
    assert.equal(await runCli(['audit', 'query', '--help'], io), 0);
    const help = io.stdout.join('\n');
    for (const option of ['--identity', '--namespace', '--trace', '--database', '--collection', '--verb', '--decision', '--rule', '--engine', '--type', '--outcome', '--since', '--until', '--json', '--limit', '--digest', '--fingerprint', '--config']) {
      assert.ok(help.includes(`  ${option} `), `${option} in the help`);
    }
    const group = captureIO();
    assert.equal(await runCli(['audit', '--help'], group), 0);
    assert.match(group.stdout.join('\n'), /\n {2}audit query +find audit events by identity/);
  });
});
