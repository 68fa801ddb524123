/**
 * The sqlcommenter tag meshgate puts on a statement so MariaDB's processlist and logs show
 * who asked and under which trace, spliced into the client's packet as bytes (the statement
 * may be in a charset other than UTF-8, so it is never re-encoded).
 *
 * The tag goes FIRST, where sqlcommenter appends: MariaDB keeps a statement's tail — a
 * routine, trigger, view or event body runs to the end of the text, and a syntax error quotes
 * the text from the error on — but nothing before the first keyword. The client's leading
 * whitespace stays in front of the tag: MariaDB strips it before it counts lines, so error
 * messages keep their line numbers. Because the tag never needs to know where the statement
 * ends, it needs no lexing, and no text a client sends can swallow or close it.
 */
import { newSpanId } from '../../../audit/index.ts';
import { MAX_PACKET_PAYLOAD } from '../codec/constants.ts';
import { MAX_DECODED_TEXT_BYTES } from '../codec/commands.ts';
import { HEADER_BYTES, type Frame } from '../codec/framer.ts';

/**
 * The command packet with `commentHead` (a sqlcommenter comment without its closing `*\/`)
 * and, when `newTrace` is given, a traceparent naming it, in front of the statement. Null
 * when the tag would push the command past one packet: tagging must not change how many
 * packets the command takes, or the answer's sequence ids would not match the client's.
 */
export function spliceTag(frame: Frame, commentHead: string, newTrace: string | null, spanId?: string): Buffer | null {
  const payload = frame.payload;
  const comment = tagComment(commentHead, newTrace, spanId);
  const length = payload.length + comment.length;
  if (length >= MAX_PACKET_PAYLOAD) return null;
  let cut = 1;
  while (cut < payload.length && isSpaceByte(payload[cut]!)) cut++;
  const out = Buffer.allocUnsafe(HEADER_BYTES + length);
  out.writeUIntLE(length, 0, 3);
  out[3] = frame.seq;
  payload.copy(out, HEADER_BYTES, 0, cut);
  out.write(comment, HEADER_BYTES + cut, 'latin1');
  payload.copy(out, HEADER_BYTES + cut + comment.length, cut);
  return out;
}

/**
 * The tag: `commentHead`, a traceparent naming `trace` when given, and a space. Its span is
 * meshgate's span for the statement, so a processlist or slow log line leads to that very span.
 */
export function tagComment(commentHead: string, trace: string | null, spanId: string = newSpanId()): string {
  return commentHead + (trace === null ? '*/ ' : `,traceparent='00-${trace}-${spanId}-01'*/ `);
}

/** my_isspace in every charset a client can use (all are ASCII-compatible): space, \t … \r. */
function isSpaceByte(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

/**
 * The keys MariaDB's processlist and logs name the caller by. A statement carrying them
 * anywhere (a comment, a string) could pose as another caller to whoever reads those logs,
 * so such statements are refused. Case-insensitive: log readers need not be careful.
 */
const TAG_KEYS = /meshgate_(?:identity|role)/i;

/**
 * Whether the statement imitates meshgate's tag. `decoded` is the text the codec decoded,
 * which is all of it but for statements over 64 KiB: their bytes are searched natively for
 * the keys in lower and upper case (a case-insensitive search of 16 MiB would hold up every
 * other session for a tenth of a second).
 */
export function imitatesTag(payload: Buffer, decoded: string): boolean {
  if (TAG_KEYS.test(decoded)) return true;
  if (payload.length - 1 <= MAX_DECODED_TEXT_BYTES) return false;
  return RAW_KEYS.some((key) => payload.includes(key, 1));
}

const RAW_KEYS = ['meshgate_identity', 'meshgate_role'].flatMap((key) => [Buffer.from(key, 'latin1'), Buffer.from(key.toUpperCase(), 'latin1')]);
