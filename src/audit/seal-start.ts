/**
 * Where an audit log stands when meshgate starts, and whether it may be continued: the last
 * file and line, checked against the last signed checkpoint and the anchor in the state
 * store. A log that ends before them, or disagrees with them, was cut short, rebuilt or
 * replaced; the seal refuses it rather than bury the damage under new lines.
 */
import { truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { mgError, type MeshgateError } from '../errors/index.ts';
import type { AuditAnchorStore } from '../store/index.ts';
import { openCheckpoint, type Checkpoint, type SupersededLog } from './checkpoint.ts';
import type { ChainHead } from './jsonl-sink.ts';
import { linesBackward } from './lines.ts';
import { fileStartOf, firstLine, lastLine, lineAtSeq, listLogFiles, sizeOf, type LogLayout } from './log-files.ts';

export interface LogState {
  /** null until the log's first line exists. */
  readonly stream: string | null;
  /** The number of the file the log continues in. */
  readonly file: number;
  readonly fileBytes: number;
  readonly fileStartedAt: number | null;
  readonly head: ChainHead | null;
  readonly lastCheckpoint: (Pick<Checkpoint, 'n' | 'seq' | 'reason'> & { readonly hash: string }) | null;
  /** The anchor of another log, when this directory holds none: the new log replaces it. */
  readonly supersedes?: SupersededLog;
}

const short = (hash: string) => `${hash.slice(0, 12)}…`;

export async function inspectLog(layout: LogLayout, anchors: { readonly store: AuditAnchorStore; readonly id: string } | undefined, now: () => number): Promise<LogState> {
  const refuse = (what: string): MeshgateError =>
    mgError(
      'MG_AUDIT_UNAVAILABLE',
      `${what}; meshgate will not write on top of it. Run 'meshgate audit verify ${layout.active} --public-key KEY.pub' to see what happened; ` +
        `to start a new log, move every file of this one (and ${layout.checkpointsName}) aside together`,
    );
  const files = await listLogFiles(layout);
  const activeBytes = (await sizeOf(layout.active)) ?? 0;
  const current = activeBytes > 0 ? files.at(-1) : files.filter((f) => f.number !== null).at(-1);

  let stream: string | null = null;
  let file = 1;
  let fileStartedAt: number | null = now();
  let head: ChainHead | null = null;
  if (current !== undefined) {
    const first = await firstLine(current.path);
    if (first !== null && 'problem' in first) throw refuse(`the first line of ${current.path} is damaged (${first.problem})`);
    if (first !== null) {
      const start = fileStartOf(first);
      if (start.file === null || (current.number !== null && current.number !== start.file)) {
        throw refuse(`${current.path} is not a file of this log: its first line is neither a file header nor the start of a log`);
      }
      const last = await lastLine(current.path);
      if (last === null || 'problem' in last) throw refuse(`the last line of ${current.path} is damaged (${last === null ? 'missing' : last.problem})`);
      stream = start.stream;
      file = start.file;
      fileStartedAt = start.startedAt;
      head = { seq: last.seq, hash: last.hash };
    }
  }
  const pathOf = (n: number) => (n === file && current?.number === null ? layout.active : join(layout.dir, layout.rotatedName(n)));
  const ends = head === null ? 'holds no line' : `ends at seq ${head.seq}`;
  /** Checks that the log reaches `seq` and has `hash` there; returns what is wrong, or null. */
  const disagreement = async (what: string, named: { stream: string; file: number; seq: number; head: string }): Promise<string | null> => {
    if (head === null) return `the audit log ${layout.active} holds no line, but ${what} names seq ${named.seq}`;
    if (named.stream !== stream) return `the audit log ${layout.active} is not the one ${what} was made for (it names log ${short(named.stream)}, these files are ${short(stream ?? '')})`;
    if (named.seq > head.seq) return `the audit log ${layout.active} ${ends}, but ${what} names seq ${named.seq}: it was cut short`;
    const line = await lineAtSeq(pathOf(named.file), named.seq);
    if (line === null && (await sizeOf(pathOf(named.file))) === null) return `${what} names seq ${named.seq} in ${pathOf(named.file)}, which is gone`;
    if (line === null) return `${what} names seq ${named.seq} in ${pathOf(named.file)}, which does not hold it: lines were cut from it`;
    if (line.hash !== named.head) return `${what} names hash ${short(named.head)} for seq ${named.seq}, but ${pathOf(named.file)} has ${short(line.hash)} there: the chain was rebuilt or the file replaced`;
    return null;
  };

  let lastCheckpoint: LogState['lastCheckpoint'] = null;
  const cpSize = await sizeOf(layout.checkpoints);
  if (cpSize !== null && cpSize > 0) {
    for await (const { bytes, terminated } of linesBackward(layout.checkpoints)) {
      if (!terminated) {
        // A checkpoint torn by a crash was never anchored: cut it, so the next one starts a clean line.
        await truncate(layout.checkpoints, cpSize - bytes.length);
        continue;
      }
      const opened = openCheckpoint(bytes);
      if ('problem' in opened) throw refuse(`the last line of ${layout.checkpoints} is damaged (${opened.problem})`);
      const c = opened.checkpoint;
      const wrong = await disagreement(`checkpoint ${c.n} in ${layout.checkpointsName}`, c);
      if (wrong !== null) throw refuse(wrong);
      lastCheckpoint = { n: c.n, seq: c.seq, reason: c.reason, hash: opened.hash };
      break;
    }
  }

  let supersedes: SupersededLog | undefined;
  if (anchors !== undefined) {
    const anchor = await anchors.store.getAnchor(anchors.id);
    if (anchor !== null && head === null) {
      supersedes = { stream: anchor.stream, file: anchor.file, seq: anchor.seq, head: anchor.head };
    } else if (anchor !== null) {
      const wrong = await disagreement(`the anchor '${anchors.id}' in ${anchors.store.location}`, anchor);
      if (wrong !== null) throw refuse(wrong);
    }
  }
  return {
    stream,
    file,
    fileBytes: current === undefined ? 0 : ((await sizeOf(current.path)) ?? 0),
    fileStartedAt,
    head,
    lastCheckpoint,
    ...(supersedes === undefined ? {} : { supersedes }),
  };
}
