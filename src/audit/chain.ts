/**
 * The hash-chained line format shared by the JSONL sink (which writes it) and verify (which
 * checks it). A line is `JSON.stringify({...event, seq, prev})` with `,"hash":"<hex>"`
 * spliced in before its final `}`, where hash = sha256(prev + '\n' + that JSON). Verify
 * recomputes over the exact bytes on disk minus the spliced suffix, so no canonical JSON form
 * is needed: whatever key order the writer produced is what gets hashed.
 */
import * as crypto from 'node:crypto';
import { mgError } from '../errors/index.ts';
import { linesBackward } from './lines.ts';
import { openStatementJson, STATEMENT_JSON, type StatementJsonParts } from './statement-json.ts';
import type { StatementEvent } from './types.ts';

export const GENESIS_HASH = '0'.repeat(64);

const SUFFIX_HEAD = ',"hash":"';
const SUFFIX_TAIL = '"}';
/** `,"hash":"` + 64 hex + `"}`: fixed length, so the suffix can be cut without parsing. */
const SUFFIX_LENGTH = SUFFIX_HEAD.length + 64 + SUFFIX_TAIL.length;
const HEX64 = /^[0-9a-f]{64}$/;

// One-shot hashing (Node >= 20.12) costs about half of a createHash object per line.
const oneShot = (crypto as { hash?: (algorithm: string, data: string | Buffer) => string }).hash;

export function chainHash(prev: string, body: string | Buffer, bodyEnd?: string): string {
  if (oneShot !== undefined && typeof body === 'string' && bodyEnd === undefined) return oneShot('sha256', prev + '\n' + body);
  const h = crypto.createHash('sha256').update(prev).update('\n').update(body);
  if (bodyEnd !== undefined) h.update(bodyEnd);
  return h.digest('hex');
}

/**
 * `JSON.stringify({...event, seq, prev})`, byte for byte, without the spread: copying the
 * event into a fresh object makes V8 serialize it about three times slower.
 */
export function eventBody(event: object, seq: number, prev: string): string {
  const parts = (event as { [STATEMENT_JSON]?: StatementJsonParts })[STATEMENT_JSON];
  if (parts !== undefined) return `${openStatementJson(event as StatementEvent, parts)},"seq":${seq},"prev":"${prev}"}`;
  const json = JSON.stringify(event);
  if (typeof json !== 'string' || !json.startsWith('{') || !json.endsWith('}')) throw new TypeError('an audit event must be a JSON object');
  return `${json.length === 2 ? '{' : json.slice(0, -1) + ','}"seq":${seq},"prev":"${prev}"}`;
}

/** `body` is the JSON object text with seq and prev; returns the line including '\n'. */
export function sealLine(prev: string, body: string): { line: string; hash: string } {
  const hash = chainHash(prev, body);
  return { line: body.slice(0, -1) + SUFFIX_HEAD + hash + SUFFIX_TAIL + '\n', hash };
}

/**
 * Seals a batch of lines into one Buffer, each line's bytes encoded once: the hash is taken
 * over `prev + '\n' + body` as laid out in a scratch buffer, and the line (body, hash suffix)
 * copied from there into the batch — sealLine's strings would be encoded twice, once to hash
 * and once to write. Same bytes as sealLine, line for line.
 */
export class LineBatch {
  private scratch = Buffer.allocUnsafe(4096);
  private out: Buffer;
  private used = 0;

  constructor(sizeHint: number) {
    this.out = Buffer.allocUnsafe(Math.max(1024, sizeHint));
  }

  /** Appends the sealed line of `body` (JSON text with seq and prev) and returns its hash. */
  seal(prev: string, body: string): string {
    if (prev.length !== 64) throw new TypeError('a chain hash is 64 hex digits');
    // UTF-8 takes at most 3 bytes per UTF-16 unit: room for the body however it encodes.
    const room = 65 + body.length * 3 + SUFFIX_LENGTH + 1;
    if (this.scratch.length < room) this.scratch = Buffer.allocUnsafe(Math.max(room, this.scratch.length * 2));
    const scratch = this.scratch;
    // prev is 64 hex digits: ASCII, so one UTF-8 write lays out `prev \n body`.
    const bodyEnd = scratch.write(prev + '\n' + body, 0, 'utf8');
    const hash = oneShot !== undefined ? oneShot('sha256', scratch.subarray(0, bodyEnd)) : crypto.createHash('sha256').update(scratch.subarray(0, bodyEnd)).digest('hex');
    // The line: the body without its closing brace, then `,"hash":"…"}` and a newline.
    const at = bodyEnd - 1 + scratch.write(SUFFIX_HEAD + hash + SUFFIX_TAIL + '\n', bodyEnd - 1, 'latin1');
    const length = at - 65;
    if (this.out.length < this.used + length) {
      const grown = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.used + length));
      this.out.copy(grown, 0, 0, this.used);
      this.out = grown;
    }
    scratch.copy(this.out, this.used, 65, at);
    this.used += length;
    return hash;
  }

  /** The batch's bytes (a view; the batch is not reused). */
  bytes(): Buffer {
    return this.out.subarray(0, this.used);
  }
}

export interface ChainedLine {
  readonly seq: number;
  readonly prev: string;
  readonly hash: string;
  readonly record: Record<string, unknown>;
}

/**
 * Parses one line (without its '\n') and checks that it matches its own hash. Chain
 * continuity (seq, prev) is the caller's business: it alone knows the previous line.
 */
export function openLine(bytes: Buffer): { line: ChainedLine } | { problem: string } {
  if (bytes.length === 0) return { problem: 'empty line' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { problem: 'not a JSON object' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { problem: 'not a JSON object' };
  const record = parsed as Record<string, unknown>;
  const { seq, prev, hash } = record;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return { problem: 'seq missing or not a positive integer' };
  if (typeof prev !== 'string' || !HEX64.test(prev)) return { problem: 'prev missing or not 64 hex digits' };
  if (typeof hash !== 'string' || !HEX64.test(hash)) return { problem: 'hash missing or not 64 hex digits' };
  const n = bytes.length;
  if (
    n < SUFFIX_LENGTH + 2 ||
    bytes.toString('latin1', n - SUFFIX_LENGTH, n - SUFFIX_LENGTH + SUFFIX_HEAD.length) !== SUFFIX_HEAD ||
    bytes.toString('latin1', n - SUFFIX_TAIL.length) !== SUFFIX_TAIL ||
    bytes.toString('latin1', n - SUFFIX_TAIL.length - 64, n - SUFFIX_TAIL.length) !== hash
  ) {
    return { problem: 'hash is not the last field of the line' };
  }
  if (chainHash(prev, bytes.subarray(0, n - SUFFIX_LENGTH), '}') !== hash) {
    return { problem: 'content does not match its hash (line edited)' };
  }
  return { line: { seq, prev, hash, record } };
}

/** Where the chain in an existing file stops; a fresh chain for a missing or empty file. */
export async function readChainTail(path: string): Promise<{ seq: number; hash: string }> {
  let last;
  try {
    for await (const line of linesBackward(path)) {
      last = line;
      break;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { seq: 0, hash: GENESIS_HASH };
    throw mgError('MG_AUDIT_UNAVAILABLE', `cannot read the audit file ${path} (${(error as NodeJS.ErrnoException).code ?? 'unknown error'})`, error);
  }
  if (last === undefined) return { seq: 0, hash: GENESIS_HASH };
  // Extending a damaged or edited file would bury the damage under valid-looking lines.
  const refuse = (why: string) =>
    mgError('MG_AUDIT_UNAVAILABLE', `the audit file ${path} ${why}; run 'meshgate audit verify ${path}' and move the file aside`);
  if (!last.terminated) throw refuse('ends with an incomplete line (a torn write or an edit)');
  const opened = openLine(last.bytes);
  if ('problem' in opened) throw refuse(`has a last line meshgate cannot continue from: ${opened.problem}`);
  return { seq: opened.line.seq, hash: opened.line.hash };
}
