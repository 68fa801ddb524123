/**
 * Reads a log's checkpoints file for verify: each line must open, carry a signature by one
 * of the given public keys, and follow the one before it (numbered on, naming its hash).
 * Returns the checkpoints that can be trusted to compare the audit files with, and what is
 * wrong with the rest.
 */
import { CHECKPOINT_GENESIS, openCheckpoint, type Checkpoint } from './checkpoint.ts';
import { linesForward } from './lines.ts';
import type { AuditVerifier } from './signing-key.ts';
import type { LogFinding } from './verify-log.ts';

export interface TrustedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** Its line in the checkpoints file. */
  readonly line: number;
}

export interface CheckpointsRead {
  readonly trusted: TrustedCheckpoint[];
  readonly count: number;
  readonly findings: LogFinding[];
  readonly notes: string[];
  readonly keys: string[];
}

export async function readCheckpoints(path: string, name: string, publicKeys: readonly AuditVerifier[] | undefined): Promise<CheckpointsRead> {
  const trusted: TrustedCheckpoint[] = [];
  const findings: LogFinding[] = [];
  const notes: string[] = [];
  const keys = new Set<string>();
  const foreignKeys = new Set<string>();
  const forged = (line: number, message: string) => findings.push({ kind: 'forged', file: name, line, message });
  let expectedN = 1;
  let prev = CHECKPOINT_GENESIS;
  /** A line already found wrong: the next one's link to it says nothing new. */
  let previousBad = false;
  let lineNo = 0;
  let count = 0;
  for await (const { bytes, terminated } of linesForward(path)) {
    lineNo++;
    if (!terminated) {
      notes.push(`the last line of ${name} is incomplete (meshgate stopped while writing it); it is not counted`);
      break;
    }
    count++;
    const opened = openCheckpoint(bytes);
    if ('problem' in opened) {
      forged(lineNo, `line ${lineNo} of ${name} is not a checkpoint: ${opened.problem}`);
      previousBad = true;
      continue;
    }
    const { checkpoint: c } = opened;
    let bad = false;
    let authentic = publicKeys === undefined;
    if (publicKeys !== undefined) {
      const verifier = publicKeys.find((k) => k.keyId === c.key);
      if (verifier === undefined) {
        // Said once per key: a log signed throughout by another key is one finding, not thousands.
        if (!foreignKeys.has(c.key)) forged(lineNo, `checkpoint ${c.n} was signed by key ${c.key}, which is not a given public key (a checkpoint forged with another key, or the log of another deployment)`);
        foreignKeys.add(c.key);
        bad = true;
      } else if (!verifier.verify(opened.signed, opened.sig)) {
        forged(lineNo, `checkpoint ${c.n}: the signature does not verify (the checkpoint was edited or forged)`);
        bad = true;
      } else {
        authentic = true;
      }
    }
    if (!bad && c.n !== expectedN) {
      forged(lineNo, `checkpoint ${c.n} where ${expectedN} was expected (checkpoints removed, added or reordered)`);
      bad = true;
    } else if (!bad && c.prev !== prev && !previousBad) {
      forged(lineNo, `checkpoint ${c.n} does not name the checkpoint before it (checkpoints removed or reordered)`);
      bad = true;
    }
    keys.add(c.key);
    // A signed checkpoint is authentic even out of place; only a bad signature makes it worthless.
    if (authentic) trusted.push({ checkpoint: c, line: lineNo });
    expectedN = c.n + 1;
    prev = opened.hash;
    previousBad = bad;
  }
  return { trusted, count, findings, notes, keys: [...keys] };
}
