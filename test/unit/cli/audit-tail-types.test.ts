/**
 * `meshgate audit tail --type` takes every event type meshgate writes, from the one list in
 * the audit event model.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AUDIT_EVENT_TYPES, type AuditEvent } from '../../../src/audit/types.ts';
import { runCli } from '../../../src/cli/main.ts';
import { captureIO } from '../../helpers/cli.ts';
import { IDENTITY } from '../audit/helpers.ts';

const identity = IDENTITY;
const base = { time: '2025-01-01T00:00:00.000Z', sessionId: 's1', identity };

// One event of each type the model defines: a type added to AuditEvent and not here fails to compile.
const SAMPLES: { [T in AuditEvent['type']]: Partial<Extract<AuditEvent, { type: T }>> & { type: T } } = {
  connection: { ...base, engine: 'mysql', type: 'connection', decision: 'allow', rule: 'orders/rw', database: 'shop' },
  statement: { ...base, engine: 'mysql', type: 'statement', decision: 'allow', verb: 'SELECT', statement: 'SELECT 1' },
  session_end: { ...base, engine: 'mysql', type: 'session_end', statements: 1, durationMs: 5, reason: 'client quit' },
  rpc: { ...base, engine: 'firestore', type: 'rpc', decision: 'allow', method: 'google.firestore.v1.Firestore/GetDocument', paths: ['orders/o1'], status: 0 },
  credential: { ...base, engine: 'mysql', type: 'credential', action: 'issue', outcome: 'completed', credential: 'direct', leaseId: 'lease_1', account: 'mg-shop.orders-abc', rule: 'orders/direct' },
  intent: { ...base, engine: 'mysql', type: 'intent', command: 'query', statement: 'INSERT INTO t VALUES (1)', paths: [] },
  recovered: { time: base.time, engine: null, sessionId: null, type: 'recovered', cause: 'torn_tail', detail: 'the file ended in a partial line' },
  policy: { time: base.time, engine: null, sessionId: null, type: 'policy', action: 'reload', outcome: 'completed', trigger: 'signal', policyVersion: 'b2', previousVersion: 'a1', rules: 3, source: 'policy/', sessionsEnded: 0, error: null },
  alert: {
    ...base,
    engine: 'mysql',
    type: 'alert',
    alert: 'lease_compromised',
    lease: { id: 'lease_abc', role: 'shop_rw', account: 'mg-shop.orders-x@%' },
    reason: 'its password was changed outside meshgate',
    action: 'account dropped, 1 connection killed',
  },
};

describe('meshgate audit tail --type', () => {
  let dir: string;
  let file: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-cli-audit-'));
    file = join(dir, 'audit.jsonl');
    await writeFile(file, Object.values(SAMPLES).map((event, seq) => JSON.stringify({ seq, ...event }) + '\n').join(''));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('the exported list names exactly the types of the event model', () => {
    assert.deepEqual([...AUDIT_EVENT_TYPES].sort(), Object.keys(SAMPLES).sort());
  });

  for (const type of AUDIT_EVENT_TYPES) {
    it(`--type ${type} prints only the ${type} event`, async () => {
      const io = captureIO();
      assert.equal(await runCli(['audit', 'tail', file, '--type', type], io), 0, io.stderr.join('\n'));
      assert.equal(io.stdout.length, 1, io.stdout.join('\n'));
      assert.match(io.stdout[0]!, new RegExp(`^#\\d+ 2025-01-01T00:00:00\\.000Z ${type} `));
    });
  }

  it('--type rpc prints the Firestore call', async () => {
    const io = captureIO();
    assert.equal(await runCli(['audit', 'tail', file, '--type', 'rpc'], io), 0);
    assert.match(io.stdout[0]!, / allow GetDocument orders\/o1 status=0 /);
  });

  it('--type alert prints the lease, its account, what was found and what was done', async () => {
    const io = captureIO();
    assert.equal(await runCli(['audit', 'tail', file, '--type', 'alert'], io), 0);
    assert.match(io.stdout[0]!, / lease_compromised lease=lease_abc account=mg-shop\.orders-x@% its password was changed outside meshgate; account dropped, 1 connection killed$/);
  });

  it('an unknown type is a usage error naming every type', async () => {
    const io = captureIO();
    assert.equal(await runCli(['audit', 'tail', file, '--type', 'query'], io), 2);
    assert.deepEqual(io.stderr, [
      `meshgate audit tail: --type must be one of ${AUDIT_EVENT_TYPES.join(', ')} (see 'meshgate audit tail --help')`,
    ]);
  });

  it('the help lists every type', async () => {
    const io = captureIO();
    assert.equal(await runCli(['audit', 'tail', '--help'], io), 0);
    for (const type of AUDIT_EVENT_TYPES) assert.match(io.stdout[0]!, new RegExp(`--type [a-z_|]*\\b${type}\\b`), type);
  });
});
