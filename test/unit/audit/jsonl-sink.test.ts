import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { open, readFile, stat, writeFile, appendFile } from 'node:fs/promises';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { openJsonlAuditSink, type AuditFileHandle } from '../../../src/audit/jsonl-sink.ts';
import { verifyAuditFile } from '../../../src/audit/verify.ts';
import { eventBody, GENESIS_HASH } from '../../../src/audit/chain.ts';
import type { AuditEvent } from '../../../src/audit/types.ts';
import { statementEvent, tempDir } from './helpers.ts';

async function readLines(path: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(path, 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Wraps a real file handle; each write waits for the test to open the gate. */
function gatedFile(): { openFile: (path: string) => Promise<AuditFileHandle>; writes: number[]; release: () => void; syncs: () => number } {
  const waiting: Array<() => void> = [];
  const writes: number[] = [];
  let syncs = 0;
  let open_ = 0;
  return {
    writes,
    syncs: () => syncs,
    release: () => {
      open_++;
      waiting.shift()?.();
    },
    openFile: async (path) => {
      const real = await open(path, 'a');
      return {
        async write(buffer, offset, length) {
          if (open_ > 0) open_--;
          else await new Promise<void>((resolve) => waiting.push(resolve));
          writes.push(buffer.toString().split('\n').length - 1);
          return real.write(buffer, offset, length);
        },
        async datasync() {
          syncs++;
          await real.datasync();
        },
        close: () => real.close(),
      };
    },
  };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
/** Bounded by time, not by a count of turns: a loaded machine takes more turns for the same work. */
async function until(check: () => boolean): Promise<void> {
  const deadline = performance.now() + 5000;
  while (!check() && performance.now() < deadline) await tick();
  assert.ok(check(), 'condition never became true');
}

describe('openJsonlAuditSink', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    tmp = await tempDir();
  });
  after(async () => {
    await tmp.cleanup();
  });

  it('writes events in record order with a continuous chain, in one write per batch', async () => {
    const path = tmp.file('order.jsonl');
    let writes = 0;
    const sink = await openJsonlAuditSink(path, {
      openFile: async (p) => {
        const real = await open(p, 'a');
        return { write: (b, o, l) => (writes++, real.write(b, o, l)), datasync: () => real.datasync(), close: () => real.close() };
      },
    });
    for (let i = 0; i < 100; i++) sink.record(statementEvent(i));
    await sink.close();
    const lines = await readLines(path);
    assert.equal(lines.length, 100);
    lines.forEach((line, i) => {
      assert.equal(line['seq'], i + 1);
      assert.equal(line['sessionId'], `s-${i}`);
    });
    assert.equal(lines[0]?.['prev'], GENESIS_HASH);
    assert.equal(lines[1]?.['prev'], lines[0]?.['hash']);
    assert.equal(writes, 1, 'events recorded in one tick go out in one write');
    assert.deepEqual(await verifyAuditFile(path), { ok: true, events: 100, firstBadLine: null, problem: null, lastHash: lines[99]?.['hash'] });
  });

  it('serializes exactly as JSON.stringify({...event, seq, prev}) would', () => {
    const prev = 'ab'.repeat(32);
    for (const event of [statementEvent(1), {}, { a: '}' }, { nested: { seq: 1 } }]) {
      assert.equal(eventBody(event, 7, prev), JSON.stringify({ ...event, seq: 7, prev }));
    }
    assert.throws(() => eventBody('x' as unknown as object, 1, prev), TypeError);
  });

  it('creates a missing file readable by its owner only', async () => {
    const path = tmp.file('mode.jsonl');
    const sink = await openJsonlAuditSink(path);
    sink.record(statementEvent(1));
    await sink.close();
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  it('resumes seq and prev from the last line when reopened', async () => {
    const path = tmp.file('resume.jsonl');
    for (let round = 0; round < 3; round++) {
      const sink = await openJsonlAuditSink(path);
      assert.equal(sink.lastSeq, round * 3);
      for (let i = 0; i < 3; i++) sink.record(statementEvent(round * 3 + i));
      await sink.close();
      assert.equal(sink.lastSeq, round * 3 + 3);
    }
    const result = await verifyAuditFile(path);
    assert.equal(result.ok, true);
    assert.equal(result.events, 9);
    assert.deepEqual((await readLines(path)).map((l) => l['seq']), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('refuses to extend a file whose last complete line was edited', async () => {
    const path = tmp.file('edited.jsonl');
    const sink = await openJsonlAuditSink(path);
    sink.record(statementEvent(1));
    await sink.close();
    const good = await readFile(path, 'utf8');
    await writeFile(path, good.replace('SELECT 1', 'SELECT 2'));
    await assert.rejects(openJsonlAuditSink(path), (e: unknown) => isMeshgateError(e) && e.code === 'MG_AUDIT_UNAVAILABLE' && /line edited/.test(e.message));
    await writeFile(path, '');
    const fresh = await openJsonlAuditSink(path);
    assert.equal(fresh.lastSeq, 0);
    await fresh.close();
  });

  it('sets a torn last line aside, chains a recovered event naming it, and goes on', async () => {
    const path = tmp.file('torn.jsonl');
    const sink = await openJsonlAuditSink(path);
    sink.record(statementEvent(1));
    await sink.close();
    const torn = '{"type":"statement","seq":2';
    await appendFile(path, torn);
    const reopened = await openJsonlAuditSink(path);
    reopened.record(statementEvent(3));
    await reopened.close();
    const lines = await readLines(path);
    assert.deepEqual(lines.map((l) => l['type']), ['statement', 'recovered', 'statement']);
    const recovered = lines[1] as Record<string, unknown> & { torn: { bytes: number; sha256: string; setAside: string; nextSeq: number } };
    assert.equal(recovered['cause'], 'torn_tail');
    assert.equal(recovered.torn.bytes, torn.length);
    assert.equal(recovered.torn.nextSeq, 2);
    assert.equal(recovered.torn.sha256, createHash('sha256').update(torn).digest('hex'));
    assert.equal(await readFile(recovered.torn.setAside, 'utf8'), torn, 'the partial line is kept, byte for byte');
    assert.match(String(recovered['detail']), /statement event/);
    const result = await verifyAuditFile(path);
    assert.equal(result.ok, true, String(result.problem));
    assert.equal(result.events, 3);
  });

  it('gathers events for batchDelayMs into one write', async () => {
    const path = tmp.file('gather.jsonl');
    const gate = gatedFile();
    const sink = await openJsonlAuditSink(path, { openFile: gate.openFile, batchDelayMs: 20 });
    sink.record(statementEvent(0));
    await tick();
    sink.record(statementEvent(1));
    await tick();
    assert.deepEqual(gate.writes, [], 'nothing is written before the window closes');
    await new Promise((resolve) => setTimeout(resolve, 40));
    sink.record(statementEvent(2));
    gate.release();
    await until(() => gate.writes.length === 1);
    assert.deepEqual(gate.writes, [2], 'the two events of the window went out together');
    gate.release();
    await sink.close();
    assert.equal((await verifyAuditFile(path)).events, 3);
  });

  it('turns backlogged at the high-water mark and fires drain listeners once below half', async () => {
    const path = tmp.file('backlog.jsonl');
    const gate = gatedFile();
    // Writes start on the next turn here, so each step below is one event-loop turn.
    const sink = await openJsonlAuditSink(path, { highWaterEvents: 4, openFile: gate.openFile, batchDelayMs: 0 });
    sink.record(statementEvent(0));
    await until(() => sink.pending === 1 && !sink.backlogged);
    await tick(); // the first write is now waiting at the gate
    for (let i = 1; i < 4; i++) sink.record(statementEvent(i));
    assert.equal(sink.backlogged, true);
    assert.equal(sink.pending, 4);
    let drained = 0;
    sink.onDrain(() => drained++);
    gate.release(); // batch [0] done: 3 pending, not below 2
    await until(() => sink.pending === 3);
    assert.equal(sink.backlogged, true);
    assert.equal(drained, 0);
    gate.release(); // batch [1,2,3] done
    await until(() => sink.pending === 0);
    assert.equal(sink.backlogged, false);
    assert.equal(drained, 1);
    assert.deepEqual(gate.writes, [1, 3], 'events recorded during a write join the next batch');
    let late = 0;
    sink.onDrain(() => late++);
    await tick();
    assert.equal(late, 1, 'a listener added when not backlogged is called at once');
    assert.equal(drained, 1);
    gate.release();
    const closing = sink.close();
    await closing;
    assert.equal((await verifyAuditFile(path)).events, 4);
  });

  it('keeps events through failing writes, retries, and refuses new operations meanwhile', async () => {
    const path = tmp.file('failing.jsonl');
    const errors: Error[] = [];
    const outages: Error[] = [];
    const recoveries: unknown[] = [];
    let failures = 3;
    const sink = await openJsonlAuditSink(path, {
      highWaterEvents: 2,
      retryDelayMs: { initial: 2, max: 8 },
      onError: (e) => errors.push(e),
      onUnavailable: (e) => outages.push(e),
      onAvailable: (outage) => recoveries.push(outage),
      openFile: async (p) => {
        const real = await open(p, 'a');
        return {
          write: async (b, o, l) => {
            if (failures > 0) {
              failures--;
              throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
            }
            // Half at a time: a partial write must resume, not repeat.
            return real.write(b, o, Math.max(1, Math.floor(l / 2)));
          },
          datasync: () => real.datasync(),
          close: () => real.close(),
        };
      },
    });
    for (let i = 0; i < 5; i++) sink.record(statementEvent(i));
    assert.equal(sink.backlogged, true);
    await until(() => outages.length >= 1);
    assert.equal(sink.backlogged, false, 'sessions are not held during an outage: they are refused');
    assert.ok(isMeshgateError(sink.refusal) && sink.refusal.code === 'MG_AUDIT_UNAVAILABLE' && /ENOSPC/.test(sink.refusal.message));
    assert.equal(sink.pending, 5);
    await sink.flush();
    assert.equal(outages.length, 1, 'said once per outage, not once per retry');
    assert.equal(recoveries.length, 1);
    assert.deepEqual(errors, []);
    assert.equal(sink.refusal, null);
    assert.equal(sink.backlogged, false);
    await sink.close();
    const result = await verifyAuditFile(path);
    assert.equal(result.ok, true);
    const lines = await readLines(path);
    assert.deepEqual(lines.map((l) => l['type']), ['statement', 'statement', 'statement', 'statement', 'statement', 'recovered'], 'every event kept, then the outage on the record');
    assert.equal((lines[5] as { outage: { error: string } }).outage.error, 'ENOSPC');
  });

  it('flush resolves once everything recorded before it is written, then syncs', async () => {
    const path = tmp.file('flush.jsonl');
    const gate = gatedFile();
    const sink = await openJsonlAuditSink(path, { openFile: gate.openFile });
    sink.record(statementEvent(1));
    let flushed = false;
    const flushing = sink.flush().then(() => {
      flushed = true;
    });
    await tick();
    await tick();
    assert.equal(flushed, false, 'the write is still held at the gate');
    sink.record(statementEvent(2));
    gate.release();
    await flushing;
    const lines = await readLines(path);
    assert.equal(lines[0]?.['sessionId'], 's-1');
    assert.ok(gate.syncs() >= 1);
    gate.release();
    await sink.close();
    assert.equal((await readLines(path)).length, 2);
  });

  it('never throws from record(): after close, or when the error reporter itself throws', async () => {
    const path = tmp.file('closed.jsonl');
    const errors: Error[] = [];
    const sink = await openJsonlAuditSink(path, { onError: (e) => errors.push(e) });
    await sink.close();
    assert.doesNotThrow(() => sink.record(statementEvent(1)));
    assert.equal(errors.length, 1);
    assert.ok(isMeshgateError(errors[0]) && errors[0].code === 'MG_AUDIT_UNAVAILABLE');
    const other = await openJsonlAuditSink(tmp.file('closed2.jsonl'), {
      onError: () => {
        throw new Error('reporter broke');
      },
    });
    await other.close();
    assert.doesNotThrow(() => other.record(statementEvent(1)));
    await sink.close(); // idempotent
  });

  it('records an unserializable event as a placeholder line, keeping the chain whole', async () => {
    const path = tmp.file('bigint.jsonl');
    const errors: Error[] = [];
    const sink = await openJsonlAuditSink(path, { onError: (e) => errors.push(e) });
    sink.record(statementEvent(1));
    sink.record({ ...statementEvent(2), rowsReturned: 10n } as unknown as AuditEvent);
    sink.record(statementEvent(3));
    await sink.close();
    const lines = await readLines(path);
    assert.deepEqual(lines.map((l) => l['type']), ['statement', 'unserializable', 'statement']);
    assert.equal(lines[1]?.['eventType'], 'statement');
    assert.equal(errors.length, 1);
    assert.equal((await verifyAuditFile(path)).ok, true);
  });

  it('reports an unusable path as MG_AUDIT_UNAVAILABLE', async () => {
    await assert.rejects(
      openJsonlAuditSink(tmp.file('no-such-dir/audit.jsonl')),
      (e: unknown) => isMeshgateError(e) && e.code === 'MG_AUDIT_UNAVAILABLE',
    );
    await assert.rejects(openJsonlAuditSink(tmp.file('x'), { highWaterEvents: 0 }), TypeError);
  });
});
