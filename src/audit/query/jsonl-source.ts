/**
 * The JSONL audit log as an event source: the log a file or directory names (its rotated
 * files in order, then the active one), read line by line. Lines are taken as they are:
 * `meshgate audit verify` says whether any were edited; here a line that is not a JSON
 * object is passed over and counted, and the file headers rotation writes are not events.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { mgError } from '../../errors/index.ts';
import { lineBatchesForward } from '../lines.ts';
import { activePathOf, FILE_HEADER_TYPE, firstLine, listLogFiles, logLayout, type LogFile, type LogLayout } from '../log-files.ts';
import type { TimeWindow } from './filter.ts';
import type { AuditEventSource, SourcedEvent } from './source.ts';

/**
 * The log `path` names: any of its files (`audit.jsonl`, `audit.000003.jsonl`,
 * `audit.checkpoints.jsonl`), or the directory holding it when it holds one log.
 * MG_AUDIT_NOT_FOUND when there is none; MG_USAGE when a directory holds several.
 */
export async function openJsonlEventSource(path: string): Promise<AuditEventSource> {
  let isDirectory = false;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw unreadable(path, error);
  }
  const layout = logLayout(isDirectory ? await activeFileIn(path) : activePathOf(path));
  const files = await listLogFiles(layout).catch((error: unknown) => {
    throw unreadable(layout.dir, error);
  });
  if (files.length === 0) {
    throw mgError('MG_AUDIT_NOT_FOUND', `no audit log at ${path}: no such file. Give the file meshgate writes (audit.file in its configuration), one of its rotated files, or the directory holding them`);
  }
  return new JsonlEventSource(layout);
}

/** The active file of the one log in `dir`, named from its active or rotated files. */
async function activeFileIn(dir: string): Promise<string> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    throw unreadable(dir, error);
  }
  const logs = new Set<string>();
  for (const name of names) {
    if (extname(name) !== '.jsonl' || name.startsWith('.')) continue;
    logs.add(basename(activePathOf(name)));
  }
  const found = [...logs].sort();
  if (found.length === 1) return join(dir, found[0]!);
  if (found.length === 0) throw mgError('MG_AUDIT_NOT_FOUND', `no audit log in ${dir}: it holds no .jsonl file. Give the audit file meshgate writes (audit.file in its configuration) or the directory holding it`);
  throw mgError('MG_USAGE', `${dir} holds ${found.length} audit logs (${found.join(', ')}): name one of them`);
}

function unreadable(path: string, error: unknown) {
  const code = (error as NodeJS.ErrnoException).code;
  return mgError('MG_AUDIT_UNAVAILABLE', `cannot read ${path} (${code ?? 'unknown error'}): check that it exists and that you may read it`, error);
}

class JsonlEventSource implements AuditEventSource {
  readonly name: string;
  private readonly found: string[] = [];

  constructor(private readonly layout: LogLayout) {
    this.name = layout.active;
  }

  notes(): readonly string[] {
    return this.found;
  }

  async *events(window: TimeWindow): AsyncGenerator<SourcedEvent[]> {
    this.found.length = 0;
    const files = await listLogFiles(this.layout);
    const starts = window.since === null && window.until === null ? null : await Promise.all(files.map(startTimeOf));
    for (const [index, file] of files.entries()) {
      if (starts !== null) {
        // A file starts no later than its first event and ends before the next file's header.
        const start = starts[index] ?? null;
        if (window.until !== null && start !== null && start >= window.until) break;
        const next = starts[index + 1] ?? null;
        if (window.since !== null && next !== null && next < window.since) continue;
      }
      yield* this.read(file);
    }
    const after = await listLogFiles(this.layout).catch(() => files);
    const read = new Set(files.map((f) => f.name));
    if (after.some((f) => !read.has(f.name))) {
      this.found.push(`the log rotated while it was read (now ${after.at(-1)?.name ?? 'no file'}): events written meanwhile may be missing; run the query again to see them`);
    }
  }

  private async *read(file: LogFile): AsyncGenerator<SourcedEvent[]> {
    let line = 0;
    let skipped = 0;
    let firstSkipped = 0;
    let torn = false;
    try {
      for await (const lines of lineBatchesForward(file.path)) {
        const events: SourcedEvent[] = [];
        for (const { bytes, terminated } of lines) {
          line += 1;
          const event = parseObject(bytes);
          if (event === null) {
            if (!terminated) torn = true;
            else if (skipped++ === 0) firstSkipped = line;
          } else if (event['type'] !== FILE_HEADER_TYPE) {
            events.push({ event, where: `${file.name}:${line}` });
          }
        }
        yield events;
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        this.found.push(`${file.name} was removed while the query ran (retention?): its events are not in the results`);
        return;
      }
      throw unreadable(file.path, error);
    }
    if (skipped > 0) {
      this.found.push(`${skipped} line${skipped === 1 ? '' : 's'} of ${file.name} (the first at line ${firstSkipped}) ${skipped === 1 ? 'is' : 'are'} not a JSON event: passed over; 'meshgate audit verify' says what happened to ${skipped === 1 ? 'it' : 'them'}`);
    }
    if (torn) this.found.push(`the last line of ${file.name} is incomplete (being written, or cut by a crash): passed over`);
  }
}

function parseObject(bytes: Buffer): Record<string, unknown> | null {
  try {
    const parsed: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Epoch ms of a file's first line, or null when it cannot be told (then the file is read). */
async function startTimeOf(file: LogFile): Promise<number | null> {
  try {
    const first = await firstLine(file.path);
    if (first === null || 'problem' in first) return null;
    const time = Date.parse(String(first.record['time']));
    return Number.isNaN(time) ? null : time;
  } catch {
    return null;
  }
}
