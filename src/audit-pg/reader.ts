/**
 * Reads a replica's JSONL log for the export from a position on: the file (by its number in
 * the log, which rotation keeps while it renames), the byte offset and line in it, and the
 * chain head before it. Only complete lines are taken: a line still being written, or a torn
 * tail the sink will set aside at its next start, is left for later. Every line is checked as
 * verify checks it (its own hash, seq and prev continuing the chain), so the table never
 * holds a line the file's chain does not vouch for; anything that breaks the position is
 * MG_AUDIT_EXPORT_STOPPED with what to do.
 */
import { isUtf8 } from 'node:buffer';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import { fileStartOf, listLogFiles, openLine, type LogLayout } from '../audit/index.ts';
import { mgError, type MeshgateError } from '../errors/index.ts';
import { columnsOf, jsonbTextOf, type ExportRow } from './table.ts';

export interface Cursor {
  /** The log's id (hash of its first line); null until a first line is read. */
  readonly stream: string | null;
  /** The file's number in the log: N is `audit.00000N.jsonl` once rotated. */
  readonly file: number;
  readonly offset: number;
  /** Lines of the file before `offset`. */
  readonly line: number;
  /** The seq and prev the next line must have; null before the first line. */
  readonly nextSeq: number | null;
  readonly prevHash: string | null;
  /** Resuming: lines up to this seq are in the table already and are passed over (the one with this seq must have this hash). */
  readonly skipThrough: { readonly seq: number; readonly hash: string } | null;
  /** The inode the offset is in: a file replaced under the same name is read again from its start. */
  readonly ino: number | null;
  /**
   * The position came from the table (the last row's file, line and end offset) and no line
   * has been read there yet. If the file does not continue the chain at that offset, it is
   * read again from its start (skipThrough), which says precisely what is wrong, if anything.
   */
  readonly resumed: boolean;
}

export interface ReadBatch {
  readonly rows: ExportRow[];
  readonly stream: string;
  readonly cursor: Cursor;
}

const CHUNK = 1 << 20;
const YIELD_EVERY_LINES = 32;
const REPLACED_WHAT_TO_DO =
  'the audit file was replaced by a new log. Give this replica a new state.replicaId (the old rows stay under the old one), or move the old rows out of the table, then restart meshgate';

function stopped(message: string): MeshgateError {
  return mgError('MG_AUDIT_EXPORT_STOPPED', message);
}

/** Where to begin when the table holds nothing of this replica: the log's oldest file. Null when there is no log yet. */
export async function startOfLog(layout: LogLayout): Promise<Cursor | null> {
  const files = await listLogFiles(layout);
  const first = files[0];
  if (first === undefined) return null;
  const number = first.number ?? (await activeNumber(layout.active)) ?? 1;
  return { stream: null, file: number, offset: 0, line: 0, nextSeq: null, prevHash: null, skipThrough: null, ino: null, resumed: false };
}

/** Where to go on from the row the table holds last for this replica. */
export function resumeAfter(last: { seq: number; hash: string; stream: string; file: number; line: number; end: number }): Cursor {
  return { stream: last.stream, file: last.file, offset: last.end, line: last.line, nextSeq: last.seq + 1, prevHash: last.hash, skipThrough: null, ino: null, resumed: true };
}

/** Reads the cursor's file again from its start, passing over what the table holds. */
function rescan(cursor: Cursor): Cursor {
  return { ...cursor, offset: 0, line: 0, skipThrough: { seq: cursor.nextSeq! - 1, hash: cursor.prevHash! }, nextSeq: null, prevHash: null, ino: null, resumed: false };
}

async function tryOpen(path: string): Promise<FileHandle | null> {
  try {
    return await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** The number the active file's first line gives it; null when it has no complete line yet. */
async function numberOf(handle: FileHandle): Promise<number | null> {
  const pieces: Buffer[] = [];
  let position = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(64 * 1024);
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
    if (bytesRead === 0) return null;
    const part = chunk.subarray(0, bytesRead);
    const nl = part.indexOf(10);
    if (nl === -1) {
      pieces.push(part);
      position += bytesRead;
      continue;
    }
    pieces.push(part.subarray(0, nl));
    const opened = openLine(Buffer.concat(pieces));
    // A first line that is not a chained line: the chain check says so when it is read.
    return 'problem' in opened ? 1 : (fileStartOf(opened.line).file ?? 1);
  }
}

async function activeNumber(path: string): Promise<number | null> {
  const handle = await tryOpen(path);
  if (handle === null) return null;
  try {
    return await numberOf(handle);
  } finally {
    await handle.close();
  }
}

export class LogReader {
  /** The active file's number, read once per file rather than at every tick; the file is told by inode and birth time (inodes are reused). */
  #active: { ino: number; born: number; number: number } | null = null;

  constructor(
    private readonly layout: LogLayout,
    private readonly batch: number,
  ) {}

  /**
   * Up to `batch` lines from `cursor` on, all of one file. No rows and the same cursor: nothing
   * new. No rows and another cursor: it moved on (to the next file, or to re-read a replaced one).
   */
  async read(cursor: Cursor): Promise<ReadBatch> {
    const found = await this.#openFile(cursor.file);
    if (found === 'gone') return this.#gone(cursor);
    if (found === 'replaced') throw stopped(this.#replaced(cursor));
    if (found === null) return { rows: [], stream: cursor.stream ?? '', cursor };
    const { handle, rotated, ino, name } = found;
    try {
      if (cursor.ino !== null && cursor.ino !== ino) {
        // Replaced under the same name (restored from a backup, or a new log): read it from its start.
        return { rows: [], stream: cursor.stream ?? '', cursor: { ...cursor, offset: 0, line: 0, ino, skipThrough: cursor.nextSeq === null ? cursor.skipThrough : { seq: cursor.nextSeq - 1, hash: cursor.prevHash! }, nextSeq: null, prevHash: null, resumed: false } };
      }
      if (cursor.resumed && (await handle.stat()).size < cursor.offset) return { rows: [], stream: cursor.stream ?? '', cursor: rescan(cursor) };
      const { lines, end, torn } = await readLines(handle, cursor.offset, this.batch);
      let { stream, nextSeq, prevHash, skipThrough, line, offset } = cursor;
      const rows: ExportRow[] = [];
      for (const [i, bytes] of lines.entries()) {
        // Hashing and parsing a line is about 20 µs: a batch at once would hold the relay's
        // sessions (same event loop) for milliseconds, so other work gets a turn every few lines.
        if (i > 0 && i % YIELD_EVERY_LINES === 0) await setImmediate();
        line++;
        offset += bytes.length + 1;
        const at = `line ${line} of ${name} (file ${cursor.file} of the log)`;
        const opened = openLine(bytes);
        if (i === 0 && cursor.resumed && ('problem' in opened || opened.line.seq !== nextSeq || opened.line.prev !== prevHash)) {
          return { rows: [], stream: cursor.stream ?? '', cursor: rescan(cursor) };
        }
        if ('problem' in opened) throw stopped(`${at} ${opened.problem}; the export stops before it. Run 'meshgate audit verify ${this.layout.active}' to see what happened to the file`);
        if (!isUtf8(bytes)) throw stopped(`${at} is not UTF-8; run 'meshgate audit verify ${this.layout.active}'`);
        const chained = opened.line;
        if (line === 1) {
          const start = fileStartOf(chained);
          if (start.stream !== null && stream !== null && start.stream !== stream) {
            throw stopped(`${name} belongs to another log (${start.stream.slice(0, 12)}…) than the one this replica exported (${stream.slice(0, 12)}…): ${REPLACED_WHAT_TO_DO}`);
          }
          stream ??= start.stream;
        }
        if (skipThrough !== null) {
          if (chained.seq < skipThrough.seq) continue;
          if (chained.seq > skipThrough.seq) {
            throw stopped(`${at} has seq ${chained.seq}, but the table holds this replica's lines only up to seq ${skipThrough.seq} and ${name} does not hold the lines in between: the file holding them is gone. Restore it and restart meshgate`);
          }
          if (chained.hash !== skipThrough.hash) {
            throw stopped(`${at} (seq ${chained.seq}) is not the line the table holds for that seq: the log was rewritten, or another log is exported under this replica id. Run 'meshgate audit verify' on the file and 'meshgate audit verify --postgres' on the table`);
          }
          skipThrough = null;
          nextSeq = chained.seq + 1;
          prevHash = chained.hash;
          continue;
        }
        if (nextSeq !== null && (chained.seq !== nextSeq || chained.prev !== prevHash)) {
          const why = chained.seq !== nextSeq ? `has seq ${chained.seq} where ${nextSeq} was expected` : "does not continue the chain (its prev is not the previous line's hash)";
          throw stopped(`${at} ${why}: lines are missing between what was exported and this file (a rotated file removed, or the log edited). Run 'meshgate audit verify ${this.layout.active}'; restore the missing file and restart meshgate`);
        }
        nextSeq = chained.seq + 1;
        prevHash = chained.hash;
        const lineText = bytes.toString('utf8');
        rows.push({ seq: chained.seq, file: cursor.file, line, end: offset, prev: chained.prev, hash: chained.hash, columns: columnsOf(chained.record), lineText, jsonb: jsonbTextOf(lineText, chained.record) });
      }
      if (stream === null && rows.length > 0) stream = rows[0]!.hash;
      let next: Cursor = { stream, file: cursor.file, offset, line, nextSeq, prevHash, skipThrough, ino, resumed: cursor.resumed && lines.length === 0 };
      if (rotated && end && lines.length < this.batch) {
        // A rotated file is complete: what follows is in the next one.
        if (torn) throw stopped(`${name} (file ${cursor.file} of the log) ends in an incomplete line, yet it was rotated; run 'meshgate audit verify ${this.layout.active}'`);
        next = { ...next, file: cursor.file + 1, offset: 0, line: 0, ino: null, resumed: false };
      }
      return { rows, stream: stream ?? '', cursor: next };
    } finally {
      await handle.close();
    }
  }

  #replaced(cursor: Cursor): string {
    return `the audit log at ${this.layout.active} starts again below file ${cursor.file}, where this replica's export stands: ${REPLACED_WHAT_TO_DO}`;
  }

  #gone(cursor: Cursor): ReadBatch {
    // Resuming after the last line of a file since removed: the next file must continue from it.
    if (cursor.resumed) return { rows: [], stream: cursor.stream ?? '', cursor: { ...cursor, file: cursor.file + 1, offset: 0, line: 0, ino: null, resumed: false } };
    if (cursor.skipThrough !== null && cursor.offset === 0) {
      const { seq, hash } = cursor.skipThrough;
      return { rows: [], stream: cursor.stream ?? '', cursor: { ...cursor, file: cursor.file + 1, skipThrough: null, nextSeq: seq + 1, prevHash: hash, ino: null } };
    }
    const name = this.layout.rotatedName(cursor.file);
    const from = cursor.nextSeq === null ? 'its first line' : `seq ${cursor.nextSeq}`;
    throw stopped(
      `${name} (file ${cursor.file} of the log) is gone before it was exported (retention, or removed by hand): the export stopped at ${from} of it. Restore ${name} into ${this.layout.dir} and restart meshgate; 'meshgate audit verify --postgres' reports the gap meanwhile`,
    );
  }

  async #openFile(number: number): Promise<{ handle: FileHandle; rotated: boolean; ino: number; name: string } | 'gone' | 'replaced' | null> {
    const active = await tryOpen(this.layout.active);
    let activeIs: number | null = null;
    if (active !== null) {
      const { ino, birthtimeMs: born } = await active.stat();
      const known = this.#active;
      activeIs = known !== null && known.ino === ino && known.born === born ? known.number : await numberOf(active);
      if (activeIs !== null) this.#active = { ino, born, number: activeIs };
      if (activeIs === number) return { handle: active, rotated: false, ino, name: this.layout.activeName };
      await active.close();
    }
    const name = this.layout.rotatedName(number);
    const rotated = await tryOpen(join(this.layout.dir, name));
    if (rotated !== null) return { handle: rotated, rotated: true, ino: (await rotated.stat()).ino, name };
    // Rotation renames the active file before it starts the next: with the next one there, this one is gone.
    if (activeIs !== null && activeIs > number) return 'gone';
    // A log numbers its files upwards: an active file numbered below the export's is another log.
    if (activeIs !== null && activeIs < number) return 'replaced';
    return null;
  }
}

/** Complete lines from `offset`, at most `max`; `end`: the file's end was reached; `torn`: bytes after the last '\n'. */
async function readLines(handle: FileHandle, offset: number, max: number): Promise<{ lines: Buffer[]; end: boolean; torn: boolean }> {
  const lines: Buffer[] = [];
  let pieces: Buffer[] = [];
  let position = offset;
  for (;;) {
    const chunk = Buffer.allocUnsafe(CHUNK);
    const { bytesRead } = await handle.read(chunk, 0, CHUNK, position);
    if (bytesRead === 0) return { lines, end: true, torn: pieces.length > 0 };
    position += bytesRead;
    const part = chunk.subarray(0, bytesRead);
    let start = 0;
    let nl = part.indexOf(10, start);
    while (nl !== -1) {
      const piece = part.subarray(start, nl);
      lines.push(pieces.length === 0 ? piece : Buffer.concat([...pieces, piece]));
      pieces = [];
      if (lines.length >= max) return { lines, end: false, torn: false };
      start = nl + 1;
      nl = part.indexOf(10, start);
    }
    if (start < part.length) pieces.push(part.subarray(start));
  }
}
