/**
 * Checks a hash-chained JSONL audit file: every line matches its own hash, seq counts up from
 * 1 without gaps, and each prev names the hash of the line before. Edited lines fail their
 * hash; deleted, inserted or reordered lines break seq or prev; a restart that lost its place
 * breaks both. What a bare chain cannot show is a cut-off tail: keep `lastHash` somewhere
 * the writer cannot reach if that matters.
 */
import { GENESIS_HASH, openLine } from './chain.ts';
import { linesForward } from './lines.ts';

export interface AuditVerification {
  readonly ok: boolean;
  /** Lines that passed every check (all of them when ok). */
  readonly events: number;
  /** 1-based line number of the first line that failed, or null when ok. */
  readonly firstBadLine: number | null;
  readonly problem: string | null;
  /** Hash of the last good line (64 zeros for an empty file): an anchor to compare later. */
  readonly lastHash: string;
}

export async function verifyAuditFile(path: string): Promise<AuditVerification> {
  let expectedSeq = 1;
  let prev = GENESIS_HASH;
  let lineNo = 0;
  const bad = (problem: string): AuditVerification => ({
    ok: false,
    events: lineNo - 1,
    firstBadLine: lineNo,
    problem,
    lastHash: prev,
  });
  for await (const { bytes, terminated } of linesForward(path)) {
    lineNo++;
    if (!terminated) return bad('the file ends with an incomplete line (a torn write or an edit)');
    const opened = openLine(bytes);
    if ('problem' in opened) return bad(opened.problem);
    const { line } = opened;
    if (line.seq !== expectedSeq) {
      return bad(`seq ${line.seq} where ${expectedSeq} was expected (lines deleted, inserted or reordered)`);
    }
    if (line.prev !== prev) return bad("prev is not the previous line's hash (chain broken)");
    prev = line.hash;
    expectedSeq++;
  }
  return { ok: true, events: lineNo, firstBadLine: null, problem: null, lastHash: prev };
}
