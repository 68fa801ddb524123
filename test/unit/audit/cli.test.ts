import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { auditCommands } from '../../../src/cli/commands/audit.ts';
import { UsageError, type CliIO, type OptionValues } from '../../../src/cli/command.ts';
import { openJsonlAuditSink } from '../../../src/audit/jsonl-sink.ts';
import { connectionEvent, IDENTITY, statementEvent, tempDir } from './helpers.ts';

/** Parses argv the way src/cli/main.ts does, then runs the command. */
async function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const command = auditCommands.find((c) => c.path.every((w, i) => argv[i] === w));
  assert.ok(command, `no command for ${argv.join(' ')}`);
  const parsed = parseArgs({ args: argv.slice(command.path.length), options: command.options, allowPositionals: true, strict: true });
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), cwd: process.cwd(), env: {} };
  const code = await command.run(parsed.values as OptionValues, parsed.positionals, io);
  return { code, out, err };
}

describe('meshgate audit', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let path: string;
  before(async () => {
    tmp = await tempDir();
    path = tmp.file('audit.jsonl');
    const sink = await openJsonlAuditSink(path);
    const other = { ...IDENTITY, spiffeId: 'spiffe://example.org/ns/ci/sa/deployer', principal: 'example.org/ns/ci/sa/deployer' };
    sink.record(connectionEvent(1));
    sink.record(statementEvent(2));
    sink.record(statementEvent(3, { identity: other, statement: 'DELETE FROM t\n WHERE id = 1\u001b[2J', verb: 'DELETE', decision: 'deny', error: { code: 'MG_POLICY_DENIED', message: 'denied' } }));
    sink.record(connectionEvent(4, { identity: null, decision: 'deny', rule: null, reason: 'no client certificate' }));
    sink.record({ type: 'session_end', time: '2025-01-01T00:00:01.000Z', sessionId: 's-1', engine: 'mysql', identity: IDENTITY, statements: 2, bytesFromClient: 10, bytesFromUpstream: 20, durationMs: 1000, reason: 'client quit' });
    await sink.close();
  });
  after(async () => {
    await tmp.cleanup();
  });

  it('verify: reports an intact chain with exit 0', async () => {
    const { code, out } = await run(['audit', 'verify', path]);
    assert.equal(code, 0);
    assert.equal(out[0], 'ok: 5 events, chain intact');
    assert.match(out[1] ?? '', /^last hash: [0-9a-f]{64}$/);
  });

  it('verify: reports tampering with exit 4', async () => {
    const tampered = tmp.file('tampered.jsonl');
    await writeFile(tampered, (await readFile(path, 'utf8')).replace('SELECT 2', 'SELECT 9'));
    const { code, out } = await run(['audit', 'verify', tampered]);
    assert.equal(code, 4);
    assert.deepEqual(out, ['TAMPERED at line 2: content does not match its hash (line edited)']);
  });

  it('verify: a missing file or argument is a usage error', async () => {
    await assert.rejects(run(['audit', 'verify', tmp.file('missing.jsonl')]), (e: unknown) => e instanceof UsageError && /no such file/.test(e.message));
    await assert.rejects(run(['audit', 'verify']), UsageError);
    await assert.rejects(run(['audit', 'verify', path, 'extra']), UsageError);
  });

  it('tail: prints the last events oldest first, one line each', async () => {
    const { code, out } = await run(['audit', 'tail', path, '-n', '3']);
    assert.equal(code, 0);
    assert.equal(out.length, 3);
    assert.match(out[0] ?? '', /^#3 \S+ statement +spiffe:\/\/example.org\/ns\/ci\/sa\/deployer deny DELETE trace=4bf92f35… 1\.2ms rows=1\/0 error=MG_POLICY_DENIED:denied "DELETE FROM t WHERE id = 1\?\[2J"$/);
    assert.match(out[1] ?? '', /^#4 \S+ connection +- deny rule=- from=10\.0\.0\.5:40004 db=shop role=reader no client certificate$/);
    assert.match(out[2] ?? '', /^#5 \S+ session_end +spiffe:\/\/example.org\/ns\/shop\/sa\/orders statements=2 1000ms client quit$/);
    assert.ok(out.every((l) => !/[\u0000-\u001f]/.test(l)), 'no control characters reach the terminal');
  });

  it('tail: filters by type and identity', async () => {
    const statements = await run(['audit', 'tail', path, '--type', 'statement']);
    assert.deepEqual(statements.out.map((l) => l.split(' ')[0]), ['#2', '#3']);
    const orders = await run(['audit', 'tail', path, '--identity', 'sa/orders', '--type', 'connection']);
    assert.deepEqual(orders.out.map((l) => l.split(' ')[0]), ['#1']);
    const deployer = await run(['audit', 'tail', path, '--identity', 'deployer', '-n', '1']);
    assert.deepEqual(deployer.out.map((l) => l.split(' ')[0]), ['#3']);
  });

  it('tail: rejects bad options', async () => {
    await assert.rejects(run(['audit', 'tail', path, '-n', '0']), UsageError);
    await assert.rejects(run(['audit', 'tail', path, '-n', 'x']), UsageError);
    await assert.rejects(run(['audit', 'tail', path, '--type', 'query']), UsageError);
  });
});
