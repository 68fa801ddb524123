/**
 * Sealed audit logs for the tests of checkpoints, anchoring and rotation: written by the real
 * sink and seal, with an Ed25519 key kept in a directory of its own and the anchor in an
 * embedded state store, as meshgate writes them.
 */
import * as crypto from 'node:crypto';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openJsonlAuditSink } from '../../../src/audit/jsonl-sink.ts';
import { openAuditSeal, type AuditSealOptions } from '../../../src/audit/seal.ts';
import { generateSigningKey, loadSigningKey } from '../../../src/audit/signing-key.ts';
import { openEmbeddedAnchorStore } from '../../../src/store/anchors-embedded.ts';
import type { AuditAnchorStore } from '../../../src/store/anchors.ts';
import { statementEvent } from './helpers.ts';

export interface SealedLog {
  /** The directory holding the audit files (and nothing else of the seal's). */
  readonly logDir: string;
  /** The active file, audit.jsonl. */
  readonly active: string;
  readonly stateDir: string;
  readonly anchorId: string;
}

export interface KeyPair {
  readonly privateKeyPath: string;
  readonly publicKeyPath: string;
  readonly keyId: string;
}

/** A key in `dir/keys`, away from any audit directory. */
export async function makeKey(dir: string, name = 'audit-signing.key'): Promise<KeyPair> {
  await mkdir(join(dir, 'keys'), { recursive: true });
  return generateSigningKey(join(dir, 'keys', name));
}

export interface WriteOptions {
  readonly key?: KeyPair;
  readonly events: number;
  /** Events recorded (and flushed) per batch: the seal sees one head per batch. */
  readonly perBatch?: number;
  readonly seal?: Partial<Omit<AuditSealOptions, 'file' | 'signer' | 'anchors'>>;
  /** Anchor in the embedded store of `<root>/state` (default true). */
  readonly anchor?: boolean;
  /** Numbers events from here, so two runs write different text. */
  readonly firstEvent?: number;
  /** Called between batches, e.g. to move a test clock. */
  readonly betweenBatches?: (batch: number) => void;
  readonly anchorStore?: AuditAnchorStore;
  readonly anchorId?: string;
}

/** Writes `events` statement events into `<root>/logs/audit.jsonl` and closes the log cleanly. */
export async function writeSealedLog(root: string, options: WriteOptions): Promise<SealedLog> {
  const logDir = join(root, 'logs');
  const stateDir = join(root, 'state');
  await mkdir(logDir, { recursive: true });
  const active = join(logDir, 'audit.jsonl');
  const anchorId = options.anchorId ?? 'replica-a:audit.jsonl';
  const store = options.anchorStore ?? (options.anchor === false ? undefined : await openEmbeddedAnchorStore(stateDir));
  const seal = await openAuditSeal({
    file: active,
    ...(options.key === undefined ? {} : { signer: await loadSigningKey(options.key.privateKeyPath, { auditFile: active }) }),
    ...(store === undefined ? {} : { anchors: { store, id: anchorId, ownsStore: options.anchorStore === undefined } }),
    ...options.seal,
  });
  const sink = await openJsonlAuditSink(active, { batchDelayMs: 0, afterBatch: seal.afterBatch });
  const perBatch = options.perBatch ?? 10;
  const first = options.firstEvent ?? 1;
  let batch = 0;
  for (let i = 0; i < options.events; i += perBatch) {
    for (let j = i; j < Math.min(options.events, i + perBatch); j++) {
      sink.record(statementEvent(first + j, { statement: `SELECT ${first + j} /* ${'x'.repeat(200)} */` }));
    }
    await sink.flush();
    options.betweenBatches?.(batch++);
  }
  await sink.close();
  await seal.close();
  return { logDir, active, stateDir, anchorId };
}

/** A copy of a log directory (audit files and the checkpoints file) to attack. */
export async function copyLog(log: SealedLog, to: string): Promise<SealedLog> {
  const logDir = join(to, 'logs');
  await cp(log.logDir, logDir, { recursive: true });
  return { ...log, logDir, active: join(logDir, 'audit.jsonl') };
}

export async function readLines(path: string): Promise<string[]> {
  return (await readFile(path, 'utf8')).split('\n').slice(0, -1);
}

export async function writeLines(path: string, lines: readonly string[]): Promise<void> {
  await writeFile(path, lines.map((line) => line + '\n').join(''));
}

/**
 * What an attacker's script does after editing lines: recomputes every hash from `fromIndex`
 * on, and each prev with it, so the chain is whole again. Written here from the format
 * alone (sha256(prev + '\n' + line without its hash)), not with meshgate's own code.
 * Returns the last hash, for rechaining the next file.
 */
export function rechain(lines: string[], fromIndex: number, prevHash?: string): string {
  let prev = prevHash ?? (fromIndex === 0 ? null : (JSON.parse(lines[fromIndex - 1]!) as { hash: string }).hash);
  for (let i = fromIndex; i < lines.length; i++) {
    let body = lines[i]!.replace(/,"hash":"[0-9a-f]{64}"\}$/, '}');
    if (prev !== null) body = body.replace(/"prev":"[0-9a-f]{64}"/, `"prev":"${prev}"`);
    const p = (JSON.parse(body) as { prev: string }).prev;
    const hash = crypto.createHash('sha256').update(`${p}\n${body}`).digest('hex');
    lines[i] = body.slice(0, -1) + `,"hash":"${hash}"}`;
    prev = hash;
  }
  return prev ?? '';
}
