/**
 * Changes to a COM_QUERY / COM_STMT_PREPARE statement, spliced into the client's packet as
 * bytes. The statement is never decoded and re-encoded: it may be in a charset other than
 * UTF-8, and only the bytes meshgate changes may differ from what the client sent.
 */
import { MAX_PACKET_PAYLOAD } from '../codec/constants.ts';
import { HEADER_BYTES, type Frame } from '../codec/framer.ts';

/** Replace `remove` bytes at `at` (counted from the statement's first byte) with `insert`. */
export interface ByteEdit {
  readonly at: number;
  readonly remove: number;
  /** Pure ASCII, which every charset a MariaDB client may use encodes the same. */
  readonly insert: string;
}

const ASCII = /^[\x01-\x7f]*$/;

/**
 * The whole message (header and payload) with `edits` applied, or null when it cannot be
 * edited: a message of several packets, or one that would become one, would change how many
 * packets the command takes, and the answer's sequence ids would no longer match the
 * client's. `edits` must be in order and must not overlap.
 */
export function spliceEdits(frame: Frame, edits: readonly ByteEdit[]): Buffer | null {
  const textBytes = frame.payload.length - 1;
  let length = frame.payload.length;
  let from = 0;
  for (const edit of edits) {
    if (!Number.isInteger(edit.at) || !Number.isInteger(edit.remove) || edit.at < from || edit.remove < 0 || edit.at + edit.remove > textBytes) {
      throw new TypeError('spliceEdits needs edits in order, not overlapping, within the statement');
    }
    if (!ASCII.test(edit.insert)) throw new TypeError('spliceEdits inserts only ASCII text');
    length += edit.insert.length - edit.remove;
    from = edit.at + edit.remove;
  }
  if (frame.payload.length >= MAX_PACKET_PAYLOAD || length >= MAX_PACKET_PAYLOAD) return null;
  const out = Buffer.allocUnsafe(HEADER_BYTES + length);
  out.writeUIntLE(length, 0, 3);
  out[3] = frame.seq;
  // The command byte, then the statement's bytes between edits.
  let write = HEADER_BYTES + frame.payload.copy(out, HEADER_BYTES, 0, 1);
  let read = 1;
  for (const edit of edits) {
    write += frame.payload.copy(out, write, read, 1 + edit.at);
    write += out.write(edit.insert, write, 'latin1');
    read = 1 + edit.at + edit.remove;
  }
  frame.payload.copy(out, write, read);
  return out;
}
