/**
 * Signed checkpoints: one JSON line each in the log's checkpoints file
 * (`audit.checkpoints.jsonl` beside `audit.jsonl`), signing which line of which file of which
 * log carried which chain hash, and when. Anyone can recompute a hash chain after editing it;
 * no one without the key can sign a checkpoint for the recomputed hashes. Each checkpoint is
 * numbered and names the hash of the one before, so none can be dropped or reordered unseen.
 *
 * The line is `JSON.stringify(fields)` with `,"sig":"<base64url>"` spliced in before its final
 * `}`, the signature being over a fixed domain prefix plus that JSON: as in the chain, what is
 * checked is the bytes on disk, so no canonical JSON form is needed.
 */
import * as crypto from 'node:crypto';
import type { AuditSigner } from './signing-key.ts';

export const CHECKPOINT_GENESIS = '0'.repeat(64);

/** Why a checkpoint was written: a count of events, a quiet interval, a file closed by rotation, meshgate stopping. */
export const CHECKPOINT_REASONS = ['events', 'interval', 'rotation', 'shutdown'] as const;
export type CheckpointReason = (typeof CHECKPOINT_REASONS)[number];

/** The anchor a new log replaced, when meshgate started on an emptied audit directory. */
export interface SupersededLog {
  readonly stream: string;
  readonly file: number;
  readonly seq: number;
  readonly head: string;
}

export interface CheckpointFields {
  /** 1, 2, 3… over the whole log. */
  readonly n: number;
  /** The log's identity: the hash of its first line. */
  readonly stream: string;
  /** The number of the file holding `seq` (1 for the log's first file). */
  readonly file: number;
  readonly seq: number;
  /** The chain hash of line `seq`. */
  readonly head: string;
  /** ISO-8601, when the checkpoint was signed. */
  readonly time: string;
  readonly reason: CheckpointReason;
  /** SHA-256 of the previous checkpoint's line (CHECKPOINT_GENESIS for the first). */
  readonly prev: string;
  readonly supersedes?: SupersededLog;
}

export interface Checkpoint extends CheckpointFields {
  /** Which key signed it (see signing-key.ts). */
  readonly key: string;
}

export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** What the signature covers. */
  readonly signed: Buffer;
  readonly sig: string;
  /** SHA-256 of the whole line: the next checkpoint's prev. */
  readonly hash: string;
}

const DOMAIN = Buffer.from('meshgate audit checkpoint v1\n');
const SIG_HEAD = ',"sig":"';
const SIG_TAIL = '"}';
const SIG_LENGTH = 86;
const SUFFIX_LENGTH = SIG_HEAD.length + SIG_LENGTH + SIG_TAIL.length;
const HEX64 = /^[0-9a-f]{64}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const SIG = /^[A-Za-z0-9_-]{86}$/;

function lineHash(bytes: Buffer | string): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

export function signCheckpoint(fields: CheckpointFields, signer: AuditSigner): { line: string; hash: string } {
  const { n, stream, file, seq, head, time, reason, prev, supersedes } = fields;
  const body = JSON.stringify({ n, stream, file, seq, head, time, reason, prev, ...(supersedes === undefined ? {} : { supersedes }), key: signer.keyId });
  const sig = signer.sign(Buffer.concat([DOMAIN, Buffer.from(body)]));
  const line = `${body.slice(0, -1)}${SIG_HEAD}${sig}${SIG_TAIL}`;
  return { line: line + '\n', hash: lineHash(line) };
}

const positive = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
const hex64 = (value: unknown): value is string => typeof value === 'string' && HEX64.test(value);

function supersededOf(value: unknown): SupersededLog | null {
  if (typeof value !== 'object' || value === null) return null;
  const { stream, file, seq, head } = value as Record<string, unknown>;
  if (!hex64(stream) || !positive(file) || !positive(seq) || !hex64(head)) return null;
  return { stream, file, seq, head };
}

/** Parses one line (without its '\n'); the signature is the caller's to check, with the key it trusts. */
export function openCheckpoint(bytes: Buffer): OpenedCheckpoint | { problem: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { problem: 'not a JSON object' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { problem: 'not a JSON object' };
  const r = parsed as Record<string, unknown>;
  const n = bytes.length;
  const sig = r['sig'];
  if (
    typeof sig !== 'string' ||
    !SIG.test(sig) ||
    n < SUFFIX_LENGTH + 2 ||
    bytes.toString('latin1', n - SUFFIX_LENGTH, n - SUFFIX_LENGTH + SIG_HEAD.length) !== SIG_HEAD ||
    bytes.toString('latin1', n - SIG_TAIL.length) !== SIG_TAIL ||
    bytes.toString('latin1', n - SIG_TAIL.length - SIG_LENGTH, n - SIG_TAIL.length) !== sig
  ) {
    return { problem: 'the signature is missing or not the last field' };
  }
  if (!positive(r['n'])) return { problem: 'n missing or not a positive integer' };
  if (!hex64(r['stream'])) return { problem: 'stream missing or not 64 hex digits' };
  if (!positive(r['file'])) return { problem: 'file missing or not a positive integer' };
  if (!positive(r['seq'])) return { problem: 'seq missing or not a positive integer' };
  if (!hex64(r['head'])) return { problem: 'head missing or not 64 hex digits' };
  if (typeof r['time'] !== 'string' || Number.isNaN(Date.parse(r['time']))) return { problem: 'time missing or not a date' };
  if (!(CHECKPOINT_REASONS as readonly unknown[]).includes(r['reason'])) return { problem: `reason is not one of ${CHECKPOINT_REASONS.join(', ')}` };
  if (!hex64(r['prev'])) return { problem: 'prev missing or not 64 hex digits' };
  if (typeof r['key'] !== 'string' || !KEY_ID.test(r['key'])) return { problem: 'key missing or not a key id' };
  const supersedes = r['supersedes'] === undefined ? undefined : supersededOf(r['supersedes']);
  if (supersedes === null) return { problem: 'supersedes is not a stream, file, seq and head' };
  const checkpoint: Checkpoint = {
    n: r['n'],
    stream: r['stream'],
    file: r['file'],
    seq: r['seq'],
    head: r['head'],
    time: r['time'],
    reason: r['reason'] as CheckpointReason,
    prev: r['prev'],
    ...(supersedes === undefined ? {} : { supersedes }),
    key: r['key'],
  };
  const signed = Buffer.concat([DOMAIN, bytes.subarray(0, n - SUFFIX_LENGTH), Buffer.from('}')]);
  return { checkpoint, signed, sig, hash: lineHash(bytes) };
}
