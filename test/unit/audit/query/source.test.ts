/**
 * The JSONL log as an event source: every file of a rotated log in order, named by any of
 * its files or its directory; headers are not events; lines that are not events, a torn
 * last line, files outside the time window; what a path without a log says.
 */
import assert from 'node:assert/strict';
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openJsonlEventSource } from '../../../../src/audit/query/jsonl-source.ts';
import type { SourcedEvent } from '../../../../src/audit/query/source.ts';
import { isMeshgateError } from '../../../../src/errors/index.ts';
import { statementEvent, tempDir } from '../helpers.ts';
import { MINUTE, T0, writeRotatedLog } from './helpers.ts';

const EVENTS = Array.from({ length: 60 }, (_, i) => statementEvent(i, { time: new Date(T0 + i * MINUTE).toISOString(), statement: `SELECT ${i} /* ${'x'.repeat(200)} */` }));

async function read(path: string, window = { since: null as number | null, until: null as number | null }): Promise<{ events: SourcedEvent[]; batches: number; notes: readonly string[] }> {
  const source = await openJsonlEventSource(path);
  const events: SourcedEvent[] = [];
  let batches = 0;
  for await (const batch of source.events(window)) {
    batches += 1;
    events.push(...batch);
  }
  return { events, batches, notes: source.notes() };
}

function notFound(message: RegExp) {
  return (error: unknown) => isMeshgateError(error) && error.code === 'MG_AUDIT_NOT_FOUND' && message.test(error.message);
}

describe('the JSONL audit log as an event source', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let logDir: string;
  let files: string[];
  before(async () => {
    tmp = await tempDir();
    logDir = join(tmp.dir, 'log');
    await mkdir(logDir);
    files = await writeRotatedLog(logDir, EVENTS);
  });
  after(() => tmp.cleanup());

  it('reads every file of the log in order, whichever file or the directory names it; headers are not events', async () => {
    assert.ok(files.length >= 4, `rotated into ${files.join(', ')}`);
    for (const path of [join(logDir, 'audit.jsonl'), join(logDir, files[1]!), join(logDir, 'audit.checkpoints.jsonl'), logDir]) {
      const { events, notes } = await read(path);
      assert.deepEqual(events.map((e) => e.event['sessionId']), EVENTS.map((e) => e.sessionId), path);
      assert.deepEqual(notes, []);
      assert.ok(events.every((e) => e.event['type'] === 'statement'));
      const order = [...new Set(events.map((e) => e.where.split(':')[0]))];
      assert.deepEqual(order, files, 'the files in the order they were written');
    }
  });

  it('passes over files that end before --since or start after --until, and reads the others whole', async () => {
    const { events } = await read(logDir, { since: T0 + 40 * MINUTE, until: T0 + 45 * MINUTE });
    const names = new Set(events.map((e) => e.where.split(':')[0]));
    assert.ok(names.size < files.length, `read only ${[...names].join(', ')}`);
    const minutes = events.map((e) => (Date.parse(String(e.event['time'])) - T0) / MINUTE);
    assert.ok(minutes.includes(40) && minutes.includes(44), 'every event inside the window is read');
  });

  it('counts lines that are not events, says where, and passes over a torn last line', async () => {
    const copy = join(tmp.dir, 'edited');
    await mkdir(copy);
    for (const name of files) await writeFile(join(copy, name), await readFile(join(logDir, name)));
    await appendFile(join(copy, files[0]!), 'not json\n[1,2]\n');
    await appendFile(join(copy, 'audit.jsonl'), '{"type":"statement","ti');
    const { events, notes } = await read(copy);
    assert.equal(events.length, EVENTS.length);
    assert.equal(notes.length, 2, notes.join('\n'));
    assert.match(notes[0]!, new RegExp(`^2 lines of ${files[0]!.replaceAll('.', '\\.')} \\(the first at line \\d+\\) are not a JSON event: passed over; 'meshgate audit verify'`));
    assert.match(notes[1]!, /^the last line of audit\.jsonl is incomplete/);
    // A file outside the window is not read at all, so its damage is not reported either.
    const late = await read(copy, { since: T0 + 50 * MINUTE, until: null });
    assert.deepEqual(late.notes.filter((n) => n.includes(files[0]!)), []);
  });

  it('reads a large file a chunk at a time', async () => {
    const big = join(tmp.dir, 'big');
    await mkdir(big);
    const line = JSON.stringify({ ...statementEvent(1), statement: 'y'.repeat(1000) }) + '\n';
    await writeFile(join(big, 'audit.jsonl'), line.repeat(3000));
    const { events, batches } = await read(join(big, 'audit.jsonl'));
    assert.equal(events.length, 3000);
    assert.ok(batches >= 3, `${batches} batches for ${line.length * 3000} bytes`);
  });

  it('a log whose active file is gone is still its rotated files', async () => {
    const rotatedOnly = join(tmp.dir, 'rotated-only');
    await mkdir(rotatedOnly);
    for (const name of files.slice(0, -1)) await writeFile(join(rotatedOnly, name), await readFile(join(logDir, name)));
    const { events } = await read(rotatedOnly);
    assert.ok(events.length > 0 && events.length < EVENTS.length);
  });

  it('no log: MG_AUDIT_NOT_FOUND for a missing path and a directory without one; MG_USAGE for a directory with two', async () => {
    await assert.rejects(openJsonlEventSource(join(tmp.dir, 'nope.jsonl')), notFound(/^no audit log at .*nope\.jsonl: no such file\. Give the file meshgate writes/));
    const empty = join(tmp.dir, 'empty');
    await mkdir(empty);
    await writeFile(join(empty, 'notes.txt'), 'hello');
    await assert.rejects(openJsonlEventSource(empty), notFound(/^no audit log in .*empty: it holds no \.jsonl file/));
    const two = join(tmp.dir, 'two');
    await mkdir(two);
    await writeFile(join(two, 'a.jsonl'), '');
    await writeFile(join(two, 'b.000001.jsonl'), '');
    await assert.rejects(openJsonlEventSource(two), (error: unknown) => isMeshgateError(error) && error.code === 'MG_USAGE' && /holds 2 audit logs \(a\.jsonl, b\.jsonl\): name one of them/.test(error.message));
    await rm(two, { recursive: true });
  });
});
