/**
 * The files of one audit log. `audit.jsonl` is the file being written; rotation renames it
 * to `audit.000001.jsonl`, `audit.000002.jsonl`, … (numbered, so sorting by name is their
 * order) and starts a new `audit.jsonl` whose first line is a file header chained to the
 * previous file's last hash. Signed checkpoints go to `audit.checkpoints.jsonl`. The log's
 * identity (its stream) is the hash of its very first line; every header repeats it.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { GENESIS_HASH, openLine, type ChainedLine } from './chain.ts';
import { linesBackward, linesForward } from './lines.ts';

export const FILE_HEADER_TYPE = 'audit_file';

/** The first line of every file after the first. */
export interface FileHeader {
  readonly type: typeof FILE_HEADER_TYPE;
  readonly time: string;
  readonly stream: string;
  /** This file's number: 2 for the file after the first. */
  readonly file: number;
  /** The name the previous file was given when it was rotated. */
  readonly previous: string;
}

export interface LogLayout {
  readonly dir: string;
  /** The file being written. */
  readonly active: string;
  readonly activeName: string;
  readonly checkpoints: string;
  readonly checkpointsName: string;
  rotatedName(file: number): string;
  /** The number in a rotated file's name, or null for any other name. */
  rotatedNumber(name: string): number | null;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The active file of the log a rotated file or a checkpoints file belongs to; other paths as they are. */
export function activePathOf(path: string): string {
  const match = /^(.+)\.(?:\d{6,}|checkpoints)(\.[^.]+)$/.exec(basename(path));
  return match === null ? path : join(dirname(path), `${match[1]}${match[2]}`);
}

export function logLayout(activePath: string): LogLayout {
  const dir = dirname(activePath);
  const activeName = basename(activePath);
  const ext = extname(activeName);
  const stem = ext === '' ? activeName : activeName.slice(0, -ext.length);
  const checkpointsName = `${stem}.checkpoints${ext}`;
  const rotated = new RegExp(`^${escape(stem)}\\.(\\d{6,})${escape(ext)}$`);
  return {
    dir,
    active: activePath,
    activeName,
    checkpoints: join(dir, checkpointsName),
    checkpointsName,
    rotatedName: (file) => `${stem}.${String(file).padStart(6, '0')}${ext}`,
    rotatedNumber: (name) => {
      const match = rotated.exec(name);
      return match === null ? null : Number(match[1]);
    },
  };
}

export interface LogFile {
  readonly name: string;
  readonly path: string;
  /** From the name for rotated files; null for the active file (its header says). */
  readonly number: number | null;
}

/** Rotated files in order, then the active file when it exists. */
export async function listLogFiles(layout: LogLayout): Promise<LogFile[]> {
  let names: string[];
  try {
    names = await readdir(layout.dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const rotated = names
    .map((name) => ({ name, path: join(layout.dir, name), number: layout.rotatedNumber(name) }))
    .filter((f): f is LogFile & { number: number } => f.number !== null)
    .sort((a, b) => a.number - b.number);
  return names.includes(layout.activeName) ? [...rotated, { name: layout.activeName, path: layout.active, number: null }] : rotated;
}

export function headerOf(record: Record<string, unknown>): FileHeader | null {
  const { type, time, stream, file, previous } = record;
  if (type !== FILE_HEADER_TYPE) return null;
  if (typeof time !== 'string' || typeof stream !== 'string' || !/^[0-9a-f]{64}$/.test(stream)) return null;
  if (typeof file !== 'number' || !Number.isSafeInteger(file) || file < 2 || typeof previous !== 'string') return null;
  return { type, time, stream, file, previous };
}

/** Where a file sits in its log, read from its first line. */
export interface FileStart {
  readonly line: ChainedLine;
  /** Its number and log, when its first line says (a header, or the first line of a log). */
  readonly file: number | null;
  readonly stream: string | null;
  /** Epoch ms of its first line, when it carries a time. */
  readonly startedAt: number | null;
}

export function fileStartOf(line: ChainedLine): FileStart {
  const header = headerOf(line.record);
  const time = Date.parse(String(line.record['time']));
  const startedAt = Number.isNaN(time) ? null : time;
  if (header !== null) return { line, file: header.file, stream: header.stream, startedAt };
  if (line.seq === 1 && line.prev === GENESIS_HASH) return { line, file: 1, stream: line.hash, startedAt };
  return { line, file: null, stream: null, startedAt };
}

/** The first line, opened; null for a file with no complete line. */
export async function firstLine(path: string): Promise<ChainedLine | { problem: string } | null> {
  for await (const { bytes, terminated } of linesForward(path)) {
    if (!terminated) return null;
    const opened = openLine(bytes);
    return 'problem' in opened ? opened : opened.line;
  }
  return null;
}

/** The last complete line, opened; an unterminated tail (a torn write) is not a line yet. */
export async function lastLine(path: string): Promise<ChainedLine | { problem: string } | null> {
  for await (const { bytes, terminated } of linesBackward(path)) {
    if (!terminated) continue;
    const opened = openLine(bytes);
    return 'problem' in opened ? opened : opened.line;
  }
  return null;
}

/** The line carrying `seq`, read from the end (checkpoints and anchors name recent lines). */
export async function lineAtSeq(path: string, seq: number): Promise<ChainedLine | null> {
  try {
    for await (const { bytes, terminated } of linesBackward(path)) {
      if (!terminated) continue;
      const opened = openLine(bytes);
      if ('problem' in opened) return null;
      if (opened.line.seq === seq) return opened.line;
      if (opened.line.seq < seq) return null;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return null;
}

export async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}
