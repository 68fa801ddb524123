/**
 * A real meshgate with a signing key, rotation and the anchor: statements from a real client
 * through real MariaDB, then `meshgate audit verify` over what it wrote, before and after the
 * last 50 lines are cut.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { auditCommands } from '../../../src/cli/commands/audit.ts';
import type { CliIO, OptionValues } from '../../../src/cli/command.ts';
import { generateSigningKey } from '../../../src/audit/index.ts';
import { openEmbeddedAnchorStore } from '../../../src/store/index.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';
import { readLines, writeLines } from '../../unit/audit/seal-helpers.ts';

const missing = await serviceMissing('mariadb');

async function verify(args: string[]): Promise<{ code: number; out: string[] }> {
  const command = auditCommands.find((c) => c.path.join(' ') === 'audit verify')!;
  const parsed = parseArgs({ args, options: command.options, allowPositionals: true, strict: true });
  const out: string[] = [];
  const io: CliIO = { out: (l) => out.push(l), err: (l) => out.push(l), cwd: process.cwd(), env: {} };
  return { code: await command.run(parsed.values as OptionValues, parsed.positionals, io), out };
}

describe('a sealed audit log written by meshgate serving MariaDB', { skip: missing }, () => {
  let h: Harness | undefined;
  let publicKey: string;
  let stateDir: string;

  let keyDir: string | undefined;

  before(async () => {
    // The key lives apart from the audit files, as the config requires.
    keyDir = await mkdtemp(join(tmpdir(), 'meshgate-auditkey-'));
    publicKey = (await generateSigningKey(join(keyDir, 'audit.key'))).publicKeyPath;
    h = await startHarness({
      name: 'auditseal',
      workloads: STANDARD_WORKLOADS,
      config: (config) => {
        stateDir = config.state!.embedded!.dir;
        config.audit = {
          ...config.audit,
          signingKey: join(keyDir!, 'audit.key'),
          anchorId: 'auditseal-test',
          checkpoint: { events: 10, interval: '1s' },
          rotate: { maxBytes: 16 * 1024 },
        };
      },
    });
  });
  after(async () => {
    await cleanup(
      () => h?.stop(),
      () => keyDir !== undefined && rm(keyDir, { recursive: true, force: true }),
    );
  });

  it('rotates, checkpoints and anchors as it goes, and verifies whole; a cut tail does not', async () => {
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: h!.port, user: 'ignored', database: h!.database, ssl: h!.ssl('orders') });
    try {
      for (let i = 0; i < 120; i++) await conn.query(`SELECT ${i} AS n, REPEAT('x', 100) AS pad`);
    } finally {
      await conn.end();
    }
    // Only meshgate stops (a last checkpoint and anchor); the harness keeps its files until after().
    await h!.meshgate.close();
    const logDir = dirname(h!.auditFile);
    const files = (await readdir(logDir)).filter((f) => /^audit\.(\d{6}\.)?jsonl$/.test(f));
    assert.ok(files.length >= 3, `rotated: ${files.join(', ')}`);
    const store = await openEmbeddedAnchorStore(stateDir);
    const anchor = await store.getAnchor('auditseal-test');
    await store.close();
    assert.ok(anchor !== null, 'meshgate anchored its head in the state store');

    const whole = await verify([h!.auditFile, '--public-key', publicKey]);
    assert.equal(whole.code, 0, whole.out.join('\n'));
    assert.match(whole.out.join('\n'), /\(shutdown\)/);
    assert.equal(anchor.head, /^last hash: ([0-9a-f]{64})$/m.exec(whole.out.join('\n'))?.[1]);

    // The log's last 50 lines, wherever they are: the active file may hold only its header.
    let toCut = 50;
    for (const name of files.sort().reverse()) {
      const lines = await readLines(join(logDir, name));
      const cutHere = Math.min(toCut, lines.length);
      await writeLines(join(logDir, name), lines.slice(0, lines.length - cutHere));
      toCut -= cutHere;
      if (toCut === 0) break;
    }
    const cut = await verify([h!.auditFile, '--public-key', publicKey]);
    assert.equal(cut.code, 4, cut.out.join('\n'));
    assert.match(cut.out[0] ?? '', /^TAMPERED \(truncated\) at audit\.(\d{6}\.)?jsonl line \d+: .* 50 lines are missing$/);
  });
});
