/**
 * The text of a COM_QUERY / COM_STMT_PREPARE, and what the audit records of it (issue 12,
 * point 7): a prefix of `audit.statementBytes` bytes, whether it was cut, the whole text's
 * length and SHA-256, and the verb of every statement in it.
 *
 * The codec decodes the first 64 KiB only (most statements are far shorter); past that the
 * readers that must see everything (account statements, statement starts, verbs) get the
 * bytes as latin1, one character per byte, made once and only when asked: keywords and
 * punctuation are ASCII in every charset a client may use, and offsets are then byte offsets.
 */
import { hash } from 'node:crypto';
import { MAX_DECODED_TEXT_BYTES } from './codec/commands.ts';
import { MAY_CARRY_SECRET, matchesInChunks, redactSecrets, statementVerbs, statementVerbsOfPrefix, type ServerFlavor } from './sql/index.ts';

/** What a statement event says of the statement's text. */
export interface StatementRecord {
  /** Its first audit.statementBytes bytes, decoded, secrets redacted. */
  readonly text: string;
  /** The text was longer than that. */
  readonly truncated: boolean;
  /** Its length in bytes. */
  readonly bytes: number;
  /** SHA-256 (hex) of exactly those bytes; null when a literal of it was redacted (see statementRecord). */
  readonly sha256: string | null;
  /** The verb of each statement in it. */
  readonly verbs: readonly (string | null)[];
}

export class StatementText {
  /** The statement's bytes (the payload without its command byte). */
  readonly bytes: Buffer;
  private wholeText: string | null;

  /** `decoded`: what the codec decoded of `payload` (its first MAX_DECODED_TEXT_BYTES bytes). */
  constructor(
    payload: Buffer,
    readonly decoded: string,
  ) {
    this.bytes = payload.subarray(1);
    this.wholeText = this.isWhole ? decoded : null;
  }

  /** The codec decoded all of it. */
  get isWhole(): boolean {
    return this.bytes.length <= MAX_DECODED_TEXT_BYTES;
  }

  /** All of it: the decoded text, or for longer statements the bytes as latin1. */
  whole(): string {
    return (this.wholeText ??= this.bytes.toString('latin1'));
  }
}

/**
 * The record of `text`, keeping its first `prefixBytes` bytes (cut on a UTF-8 character
 * boundary). The hash covers the whole statement, as sent; it is left out where the text may
 * carry a secret (IDENTIFIED BY, PASSWORD(), AES_ENCRYPT, …): with the rest of the statement
 * on record, the hash of a text whose only unknown is a password would let anyone holding
 * the audit test guesses of it.
 */
export function statementRecord(text: StatementText, prefixBytes: number, server?: ServerFlavor): StatementRecord {
  const { bytes } = text;
  const truncated = bytes.length > prefixBytes;
  let prefix: string;
  if (!truncated) {
    prefix = text.isWhole ? text.decoded : bytes.toString('utf8');
  } else {
    let cut = prefixBytes;
    while (cut > 0 && cut > prefixBytes - 3 && (bytes[cut]! & 0xc0) === 0x80) cut--;
    prefix = bytes.toString('utf8', 0, cut);
  }
  const secret = MAY_CARRY_SECRET.test(text.decoded) || (!text.isWhole && matchesInChunks(bytes, MAX_DECODED_TEXT_BYTES - 16, MAY_CARRY_SECRET));
  return { text: redactSecrets(prefix), truncated, bytes: bytes.length, sha256: secret ? null : hash('sha256', bytes, 'hex'), verbs: verbsOf(text, server) };
}

/** audit.statementBytes when the context does not say. */
const DEFAULT_STATEMENT_BYTES = 64 * 1024;

/**
 * The record of `text`, made now when the codec decoded all of it, and when first asked for
 * (after the answer, off the command's path) when it is longer.
 */
export function recordLater(text: StatementText, prefixBytes = DEFAULT_STATEMENT_BYTES, server?: ServerFlavor): () => StatementRecord {
  if (text.isWhole) {
    const record = statementRecord(text, prefixBytes, server);
    return () => record;
  }
  let record: StatementRecord | null = null;
  return () => (record ??= statementRecord(text, prefixBytes, server));
}

/** How far past the codec's prefix to decode for the last statement's verb. */
const VERB_WINDOW = 1024;

function verbsOf(text: StatementText, server: ServerFlavor | undefined): readonly (string | null)[] {
  if (text.isWhole) return statementVerbs(text.decoded, server);
  // No ';' past the prefix: every statement starts in it, and a little more shows the last one's verb.
  if (text.bytes.indexOf(0x3b, MAX_DECODED_TEXT_BYTES) === -1) {
    const verbs = statementVerbsOfPrefix(text.bytes.toString('utf8', 0, MAX_DECODED_TEXT_BYTES + VERB_WINDOW), server);
    if (verbs !== null) return verbs;
  }
  return statementVerbs(text.whole(), server);
}
