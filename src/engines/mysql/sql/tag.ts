/**
 * The sqlcommenter tag meshgate adds to a statement, spliced into the client's packet as
 * bytes: MariaDB's processlist and logs then show who asked and under which trace.
 */
import { newSpanId } from '../../../audit/index.ts';
import { MAX_PACKET_PAYLOAD } from '../codec/constants.ts';
import { MAX_DECODED_TEXT_BYTES } from '../codec/commands.ts';
import { HEADER_BYTES, type Frame } from '../codec/framer.ts';
import { tagPlacement } from './sqlcommenter.ts';

/**
 * The statement with a sqlcommenter comment naming the caller, so MariaDB's processlist
 * and logs show who asked. Bytes are spliced, never re-encoded: the statement may be in a
 * charset other than UTF-8.
 */
export function spliceTag(frame: Frame, sql: string, commentHead: string, newTrace: string | null): Buffer | null {
  // Text beyond the decoded prefix was not lexed; and tagging must not change how many
  // packets the command takes, or the answer's sequence ids would not match the client's.
  if (frame.payload.length - 1 > MAX_DECODED_TEXT_BYTES) return null;
  const place = tagPlacement(sql);
  if (place === null) return null;
  // Character and byte offsets agree when decoding mapped each byte to one character;
  // otherwise only an append at the very end is safe.
  if (place.cut !== sql.length && frame.payload.length - 1 !== sql.length) return null;
  const cutByte = 1 + (place.cut === sql.length ? frame.payload.length - 1 : place.cut);
  const comment =
    place.separator + commentHead + (newTrace === null ? '*/' : `,traceparent='00-${newTrace}-${newSpanId()}-01'*/`);
  const length = frame.payload.length + comment.length;
  if (length >= MAX_PACKET_PAYLOAD) return null;
  const out = Buffer.allocUnsafe(HEADER_BYTES + length);
  out.writeUIntLE(length, 0, 3);
  out[3] = frame.seq;
  frame.payload.copy(out, HEADER_BYTES, 0, cutByte);
  out.write(comment, HEADER_BYTES + cutByte, 'latin1');
  frame.payload.copy(out, HEADER_BYTES + cutByte + comment.length, cutByte);
  return out;
}
