/**
 * Line readers over audit files, which can be far larger than memory. Lines are Buffers, not
 * strings, so hashing sees exactly the bytes on disk (a decode/re-encode round trip would
 * hide edits that produce invalid UTF-8).
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';

export interface FileLine {
  /** The line's bytes without its '\n'. */
  readonly bytes: Buffer;
  /** False only for a last line with no '\n' after it: a torn write or an edit. */
  readonly terminated: boolean;
}

/** Lines from the first to the last. */
export async function* linesForward(path: string): AsyncGenerator<FileLine> {
  for await (const batch of lineBatchesForward(path)) yield* batch;
}

/**
 * Lines from the first to the last, those of each chunk read in one array: a reader that
 * goes through millions of lines pays for one await per chunk, not one per line.
 */
export async function* lineBatchesForward(path: string): AsyncGenerator<FileLine[]> {
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  // Pieces of a line that spans chunks, kept apart so a huge line costs one copy, not many.
  let pieces: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const batch: FileLine[] = [];
    let start = 0;
    let nl = chunk.indexOf(10, start);
    while (nl !== -1) {
      const part = chunk.subarray(start, nl);
      batch.push({ bytes: pieces.length === 0 ? part : Buffer.concat([...pieces, part]), terminated: true });
      pieces = [];
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    if (start < chunk.length) pieces.push(chunk.subarray(start));
    if (batch.length > 0) yield batch;
  }
  if (pieces.length > 0) yield [{ bytes: Buffer.concat(pieces), terminated: false }];
}

/** Lines from the last to the first, reading the file backwards in chunks. */
export async function* linesBackward(path: string, chunkSize = 64 * 1024): AsyncGenerator<FileLine> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    let pos = size;
    // The segment after the file's last '\n' is either empty (a clean end) or a torn line.
    let trailing = true;
    let pieces: Buffer[] = [];
    const emit = (bytes: Buffer): FileLine | null => {
      const wasTrailing = trailing;
      trailing = false;
      if (wasTrailing && bytes.length === 0) return null;
      return { bytes, terminated: !wasTrailing };
    };
    while (pos > 0) {
      const start = Math.max(0, pos - chunkSize);
      const chunk = Buffer.allocUnsafe(pos - start);
      let filled = 0;
      while (filled < chunk.length) {
        const { bytesRead } = await handle.read(chunk, filled, chunk.length - filled, start + filled);
        if (bytesRead === 0) throw new Error(`${path} shrank while it was being read`);
        filled += bytesRead;
      }
      pos = start;
      let end = chunk.length;
      let nl = chunk.lastIndexOf(10, end - 1);
      while (nl !== -1) {
        const part = chunk.subarray(nl + 1, end);
        const line = emit(pieces.length === 0 ? part : Buffer.concat([part, ...pieces]));
        pieces = [];
        if (line !== null) yield line;
        end = nl;
        nl = end === 0 ? -1 : chunk.lastIndexOf(10, end - 1);
      }
      if (end > 0) pieces.unshift(chunk.subarray(0, end));
    }
    // The file's first segment has no '\n' before it, so the loop never emits it.
    if (size > 0) {
      const line = emit(Buffer.concat(pieces));
      if (line !== null) yield line;
    }
  } finally {
    await handle.close();
  }
}
