/**
 * `meshgate … | head -1`: when the reader of stdout goes away, meshgate stops writing without
 * a word (no EPIPE stack trace) and ends with the command's own exit code.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exitOf, spawnCli } from '../../helpers/cli.ts';

describe('meshgate writing into a pipe whose reader has gone', () => {
  let dir: string;
  let auditFile: string;
  const EVENTS = 30_000;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-cli-pipes-'));
    auditFile = join(dir, 'audit.jsonl');
    const identity = { spiffeId: 'spiffe://example.org/ns/shop/sa/orders', principal: 'example.org/ns/shop/sa/orders' };
    const lines = Array.from({ length: EVENTS }, (_, seq) =>
      JSON.stringify({ seq, time: '2025-01-01T00:00:00.000Z', type: 'statement', identity, decision: 'allow', verb: 'SELECT', statement: `SELECT * FROM orders WHERE id = ${seq}` }),
    );
    // Far more than a pipe buffers (64 KiB), so the writer meets the closed pipe mid-stream.
    await writeFile(auditFile, lines.join('\n') + '\n');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('--help into a pipe closed before meshgate writes: exit 0, nothing on stderr', async () => {
    const child = spawnCli(['--help']);
    child.stdout.destroy();
    const { code, signal, stderr } = await exitOf(child);
    assert.equal(stderr, '');
    assert.deepEqual([code, signal], [0, null]);
  });

  it('audit tail -n 100000 into a reader that stops after the first line: exit 0, nothing on stderr', async () => {
    const child = spawnCli(['audit', 'tail', auditFile, '-n', '100000']);
    const exited = exitOf(child);
    const [first] = (await once(child.stdout, 'data')) as [Buffer];
    child.stdout.destroy();
    const { code, signal, stderr } = await exited;
    assert.match(first.toString('utf8'), /^#0 2025-01-01T00:00:00\.000Z statement/);
    assert.equal(stderr, '');
    assert.deepEqual([code, signal], [0, null]);
  });

  it('a command that fails still says so with its exit code when nobody reads stdout', async () => {
    const child = spawnCli(['ca', 'issue']);
    child.stdout.destroy();
    const { code, stderr } = await exitOf(child);
    assert.equal(stderr, "meshgate ca issue: --spiffe-id is required (see 'meshgate ca issue --help')\n");
    assert.equal(code, 2);
  });
});
