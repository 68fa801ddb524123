/**
 * The audit sink's durability contract (docs/audit-durability.md): strict group commit,
 * fail-fast waiters in an outage, a backlog held past maxWaitMs turning into refusals, refusals
 * counted rather than queued once the queue is full, and the onDurable seam.
 */
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { isMeshgateError, mgError, type MeshgateError } from '../../../src/errors/index.ts';
import { openJsonlAuditSink, type AuditFileHandle, type DurableHead } from '../../../src/audit/jsonl-sink.ts';
import { verifyAuditFile } from '../../../src/audit/verify.ts';
import { statementEvent, tempDir } from './helpers.ts';

/** A real file whose writes and syncs are counted, and fail while `failing` is set. */
function countedFile(state: { failing: boolean; writes: number[]; syncs: number; slowSyncMs?: number }) {
  return async (path: string): Promise<AuditFileHandle> => {
    const real = await open(path, 'a');
    return {
      async write(buffer, offset, length) {
        if (state.failing) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        state.writes.push(buffer.subarray(offset, offset + length).toString().split('\n').length - 1);
        return real.write(buffer, offset, length);
      },
      async datasync() {
        if (state.slowSyncMs !== undefined) await new Promise((resolve) => setTimeout(resolve, state.slowSyncMs));
        state.syncs++;
        await real.datasync();
      },
      close: () => real.close(),
    };
  };
}

const durable = (sink: { whenDurable(cb: (e: MeshgateError | null) => void): void }) =>
  new Promise<MeshgateError | null>((resolve) => sink.whenDurable(resolve));

describe('audit durability', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    tmp = await tempDir();
  });
  after(() => tmp.cleanup());

  it('strict: a waiter is answered only after the fdatasync of its batch; what arrives during a sync is the next batch', async () => {
    const state = { failing: false, writes: [] as number[], syncs: 0, slowSyncMs: 30 };
    const heads: DurableHead[] = [];
    const sink = await openJsonlAuditSink(tmp.file('strict.jsonl'), { durability: 'strict', openFile: countedFile(state), onDurable: (head) => heads.push(head) });
    sink.record(statementEvent(1));
    const first = durable(sink);
    await new Promise((resolve) => setTimeout(resolve, 5)); // the first batch is syncing now
    const later = [];
    for (let i = 2; i <= 20; i++) {
      sink.record(statementEvent(i));
      later.push(durable(sink));
    }
    assert.equal(state.syncs, 0, 'nobody is answered before a sync');
    assert.equal(await first, null);
    assert.equal(state.syncs, 1);
    assert.deepEqual(await Promise.all(later), Array(19).fill(null));
    assert.deepEqual(state.writes, [1, 19], 'nineteen waiters, one write');
    assert.equal(state.syncs, 2, 'and one fdatasync: group commit');
    assert.deepEqual(heads.map((h) => h.seq), [1, 20]);
    await sink.close();
    assert.equal((await verifyAuditFile(tmp.file('strict.jsonl'))).lastHash, heads[1]!.hash, 'onDurable names the chain head on disk');
  });

  it('strict: waiters fail at once when the disk fails, their events stay queued, and are written when it works again', async () => {
    const state = { failing: true, writes: [] as number[], syncs: 0 };
    const sink = await openJsonlAuditSink(tmp.file('strict-fail.jsonl'), { durability: 'strict', openFile: countedFile(state), retryDelayMs: { initial: 2, max: 4 }, onUnavailable: () => undefined });
    sink.record(statementEvent(1));
    const error = await durable(sink);
    assert.ok(isMeshgateError(error) && error.code === 'MG_AUDIT_UNAVAILABLE' && /ENOSPC/.test(error.message));
    assert.equal(await durable(sink), sink.refusal, 'a new waiter during the outage is refused at once');
    state.failing = false;
    await sink.flush();
    assert.equal(sink.refusal, null);
    assert.equal(await durable(sink), null);
    await sink.close();
    const result = await verifyAuditFile(tmp.file('strict-fail.jsonl'));
    assert.equal(result.ok, true);
    assert.equal(result.events, 2, 'the event and the outage’s recovered event');
  });

  it('buffered: a backlog held past maxWaitMs refuses new operations and releases held sessions; refusals past the queue are counted', async () => {
    const state = { failing: false, writes: [] as number[], syncs: 0 };
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const unavailable: MeshgateError[] = [];
    const sink = await openJsonlAuditSink(tmp.file('backlog.jsonl'), {
      highWaterEvents: 3,
      maxWaitMs: 30,
      batchDelayMs: 0,
      onUnavailable: (e) => unavailable.push(e),
      openFile: async (path) => {
        const real = await countedFile(state)(path);
        return { ...real, write: async (b, o, l) => (await gate, real.write(b, o, l)) };
      },
    });
    for (let i = 0; i < 3; i++) sink.record(statementEvent(i));
    assert.equal(sink.backlogged, true);
    assert.equal(sink.refusal, null, 'held, not yet refused');
    // The sink's timer does not hold the process open; the test does, meanwhile.
    const alive = setInterval(() => undefined, 5);
    await new Promise<void>((resolve) => sink.onDrain(resolve));
    clearInterval(alive);
    const refused = sink.refusal as MeshgateError | null;
    assert.ok(isMeshgateError(refused) && /taken no more events for 30 ms/.test(refused.message));
    assert.equal(sink.backlogged, false, 'held sessions go on, to a refusal');
    assert.equal(unavailable.length, 1);
    const refusal = mgError('MG_AUDIT_UNAVAILABLE', 'refused');
    for (let i = 0; i < 5; i++) sink.record(statementEvent(10 + i, { decision: 'deny', error: { code: refusal.code, message: refusal.message } }));
    assert.equal(sink.pending, 3, 'refusals of the outage past the queue are counted, not queued');
    release();
    await sink.flush();
    assert.equal(sink.refusal, null);
    await sink.close();
    const text = (await import('node:fs/promises')).readFile(tmp.file('backlog.jsonl'), 'utf8');
    const lines = (await text).trim().split('\n').map((l) => JSON.parse(l) as { type: string; outage?: { unrecorded: number; error: string } });
    assert.equal(lines.at(-1)?.type, 'recovered');
    assert.deepEqual({ unrecorded: lines.at(-1)?.outage?.unrecorded, error: lines.at(-1)?.outage?.error }, { unrecorded: 5, error: 'backlog' });
  });
});
