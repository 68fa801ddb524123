/** A rotated audit log written by the real sink and seal, for the query tests. */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { openJsonlAuditSink } from '../../../../src/audit/jsonl-sink.ts';
import { openAuditSeal } from '../../../../src/audit/seal.ts';
import type { AuditEvent } from '../../../../src/audit/types.ts';

export const MINUTE = 60_000;
export const T0 = Date.UTC(2025, 5, 1, 0, 0, 0);

/**
 * Writes `events` to `<dir>/audit.jsonl`, rotating past `maxBytes`; the seal's clock follows
 * the events' own times, so each rotated file's header is no earlier than its last event.
 * Returns the log's file names, rotated first.
 */
export async function writeRotatedLog(dir: string, events: readonly AuditEvent[], maxBytes = 8192): Promise<string[]> {
  const active = join(dir, 'audit.jsonl');
  let now = T0;
  const seal = await openAuditSeal({ file: active, rotate: { maxBytes }, now: () => now });
  const sink = await openJsonlAuditSink(active, { batchDelayMs: 0, afterBatch: seal.afterBatch });
  for (const event of events) {
    now = Date.parse(event.time);
    sink.record(event);
    await sink.flush();
  }
  await sink.close();
  await seal.close();
  return (await readdir(dir)).filter((name) => /^audit\.(\d{6}\.)?jsonl$/.test(name)).sort((a, b) => (a === 'audit.jsonl' ? 1 : b === 'audit.jsonl' ? -1 : a.localeCompare(b)));
}
