/**
 * `meshgate audit keygen` and `meshgate audit verify` over a sealed, rotated log: what an
 * operator types and reads, and the exit codes scripts alert on.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { auditCommands } from '../../../src/cli/commands/audit.ts';
import { UsageError, type CliIO, type OptionValues } from '../../../src/cli/command.ts';
import { tempDir } from './helpers.ts';
import { copyLog, readLines, writeLines, writeSealedLog, type SealedLog } from './seal-helpers.ts';

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

describe('meshgate audit keygen and verify over a sealed log', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let keyPath: string;
  let keyId: string;
  let log: SealedLog;
  let config: string;
  let lastSeq: number;

  before(async () => {
    tmp = await tempDir();
    await mkdir(tmp.file('keys'));
    keyPath = tmp.file('keys/audit-signing.key');
    const { code, out } = await run(['audit', 'keygen', '--out', keyPath]);
    assert.equal(code, 0);
    keyId = /key id ([0-9a-f]{16})/.exec(out.join('\n'))?.[1] ?? '';
    assert.ok(keyId, out.join('\n'));
    const root = tmp.file('run');
    log = await writeSealedLog(root, {
      key: { privateKeyPath: keyPath, publicKeyPath: `${keyPath}.pub`, keyId },
      events: 200,
      seal: { rotate: { maxBytes: 96 * 1024 }, checkpointEvery: { events: 20, intervalMs: 3_600_000 } },
    });
    const last = (await readLines(log.active)).map((l) => JSON.parse(l) as { seq: number });
    assert.ok(last.length >= 60, `the active file has room for a 50-line cut (${last.length} lines)`);
    lastSeq = last.at(-1)!.seq;
    // A config as meshgate serve reads it, naming the same log, key and state store.
    await mkdir(join(root, 'policy'));
    await writeFile(join(root, 'bundle.pem'), '');
    config = join(root, 'meshgate.yaml');
    await writeFile(
      config,
      [
        'trust: { bundles: [bundle.pem], trustDomains: [example.org] }',
        "firestore: { tls: plaintext, project: p, upstream: { emulator: '127.0.0.1:8080' } }",
        'policy: { dir: policy }',
        'state: { embedded: { dir: state }, replicaId: replica-a }',
        `audit: { file: logs/audit.jsonl, signingKey: ${keyPath}, anchorId: '${log.anchorId}', rotate: { maxBytes: 98304 } }`,
      ].join('\n'),
    );
  });
  after(async () => {
    await tmp.cleanup();
  });

  it('keygen: a 0600 private key, its public key beside it, and what to do with each', async () => {
    assert.equal((await stat(keyPath)).mode & 0o777, 0o600);
    assert.equal((await stat(`${keyPath}.pub`)).mode & 0o777, 0o644);
    await assert.rejects(run(['audit', 'keygen', '--out', keyPath]), /already exists/);
    await assert.rejects(run(['audit', 'keygen']), UsageError);
  });

  it('verify --public-key: every file, every checkpoint, exit 0', async () => {
    const { code, out } = await run(['audit', 'verify', log.active, '--public-key', `${keyPath}.pub`]);
    assert.equal(code, 0, out.join('\n'));
    assert.equal(out[0], 'ok: 200 events, chain intact');
    assert.match(out[1] ?? '', /^last hash: [0-9a-f]{64}$/);
    assert.ok(out.some((l) => /^files: \d+ \(audit\.000001\.jsonl … audit\.jsonl\)$/.test(l)), out.join('\n'));
    assert.ok(out.some((l) => new RegExp(`^checkpoints: \\d+, signatures valid \\(key ${keyId}\\); the last at seq ${lastSeq} \\(shutdown\\)$`).test(l)), out.join('\n'));
  });

  it('verify --config --anchor: the anchor comes from the state store the config names', async () => {
    const { code, out } = await run(['audit', 'verify', '--config', config, '--anchor']);
    assert.equal(code, 0, out.join('\n'));
    assert.ok(out.some((l) => new RegExp(`^anchor: seq ${lastSeq} .* matches$`).test(l)), out.join('\n'));
  });

  it('verify: the last 50 lines cut is exit 4, naming the file and line', async () => {
    const cut = await copyLog(log, tmp.file('cut'));
    const lines = await readLines(cut.active);
    await writeLines(cut.active, lines.slice(0, -50));
    const { code, out } = await run(['audit', 'verify', cut.active, '--public-key', `${keyPath}.pub`]);
    assert.equal(code, 4);
    assert.match(out[0] ?? '', new RegExp(`^TAMPERED \\(truncated\\) at audit\\.jsonl line ${lines.length - 50}: `));
  });

  it('verify: a checkpoints file without a key to check it against says so', async () => {
    const { code, out } = await run(['audit', 'verify', log.active]);
    assert.equal(code, 0);
    assert.ok(out.some((l) => /^note: .*signatures were not checked/.test(l)), out.join('\n'));
  });

  it('verify --anchor needs --config, and an unknown anchor id names those there are', async () => {
    await assert.rejects(run(['audit', 'verify', log.active, '--anchor']), /--anchor reads the state store named by --config/);
    await assert.rejects(run(['audit', 'verify', '--config', config, '--anchor', '--anchor-id', 'nope']), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, /no anchor 'nope'/);
      assert.ok(error.message.includes(log.anchorId), error.message);
      return true;
    });
  });
});
