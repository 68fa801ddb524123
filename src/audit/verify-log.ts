/**
 * Verifies a whole audit log: every file rotation left (in order, each chained to the one
 * before), checked line by line as verify.ts checks one file, then against the signed
 * checkpoints and the anchor from the state store. The chain shows edited, deleted, inserted
 * and reordered lines; the checkpoints show a chain recomputed after an edit and a tail cut
 * off; the anchor shows a tail cut together with its checkpoints, and a log replaced whole.
 * Each finding says what and where: file, line, and which checkpoint or anchor says so.
 */
import type { AuditAnchor } from '../store/index.ts';
import { GENESIS_HASH, openLine, type ChainedLine } from './chain.ts';
import { openCheckpoint, type Checkpoint } from './checkpoint.ts';
import { linesForward } from './lines.ts';
import { activePathOf, fileStartOf, listLogFiles, logLayout, sizeOf, type LogLayout } from './log-files.ts';
import type { AuditVerifier } from './signing-key.ts';
import { readCheckpoints, type TrustedCheckpoint } from './verify-checkpoints.ts';

export type FindingKind = 'edited' | 'broken' | 'rebuilt' | 'truncated' | 'swapped' | 'missing' | 'forged';

export interface LogFinding {
  readonly kind: FindingKind;
  /** The file (a name in the log's directory) and 1-based line it is about, when it is about one. */
  readonly file: string | null;
  readonly line: number | null;
  readonly message: string;
}

export interface VerifyLogOptions {
  /** Checkpoints must be signed by one of these; without any, they are compared but not trusted. */
  readonly publicKeys?: readonly AuditVerifier[];
  /** The anchor read from the state store; null when asked for and there is none. */
  readonly anchor?: AuditAnchor | null;
  /** The first file expected (files before it were removed by retention); default 1. */
  readonly fromFile?: number;
}

export interface AuditLogVerification {
  readonly ok: boolean;
  /** Event lines (file headers are not events). */
  readonly events: number;
  readonly files: string[];
  readonly stream: string | null;
  readonly lastSeq: number;
  readonly lastHash: string;
  readonly checkpoints: { readonly count: number; readonly signaturesChecked: boolean; readonly keys: string[]; readonly last: Checkpoint | null };
  readonly anchor: 'matches' | 'mismatch' | 'absent' | null;
  readonly findings: LogFinding[];
  /** What verify could not check, or an operator should know; not tampering. */
  readonly notes: string[];
}

const short = (hash: string) => `${hash.slice(0, 12)}…`;
const missingLines = (n: number) => (n === 1 ? '1 line is missing' : `${n} lines are missing`);

/** seq, prev and hash of a line that failed its checks, to keep following the chain past it. */
function looseLine(bytes: Buffer): ChainedLine | null {
  try {
    const record = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    const { seq, prev, hash } = record;
    if (typeof seq === 'number' && typeof prev === 'string' && typeof hash === 'string') return { seq, prev, hash, record };
  } catch {
    // Nothing to follow: the next line starts afresh.
  }
  return null;
}

export async function verifyAuditLog(path: string, options: VerifyLogOptions = {}): Promise<AuditLogVerification> {
  // Any file of the log names it: its rotated files and checkpoints lead to the active one.
  const layout = logLayout(activePathOf(path));
  const files = await listLogFiles(layout);
  if (files.length === 0) throw Object.assign(new Error(`no audit file ${path}`), { code: 'ENOENT' });
  const findings: LogFinding[] = [];
  const notes: string[] = [];
  const publicKeys = options.publicKeys;
  const cps = (await sizeOf(layout.checkpoints)) === null ? null : await readCheckpoints(layout.checkpoints, layout.checkpointsName, publicKeys);
  if (cps !== null) {
    findings.push(...cps.findings);
    notes.push(...cps.notes);
  } else if (publicKeys !== undefined) {
    findings.push({ kind: 'missing', file: layout.checkpointsName, line: null, message: `there is no ${layout.checkpointsName}, but a public key was given: the signed checkpoints were deleted, or this log was never signed` });
  }
  const fromFile = options.fromFile ?? 1;
  const scan = await scanFiles(layout, files, cps?.trusted ?? [], options.anchor ?? null, fromFile);
  findings.push(...scan.findings);

  const last = scan.lastAt;
  const namesOf = (n: number) => scan.names.get(n) ?? layout.rotatedName(n);
  // Trusted checkpoints whose line the scan never reached: cut off, or in a file cut short.
  const unseen = (cps?.trusted ?? []).filter((t) => !scan.compared.has(t) && !scan.unavailable.has(t.checkpoint.file));
  const beyond = unseen.filter((t) => t.checkpoint.seq > scan.lastSeq).sort((a, b) => b.checkpoint.seq - a.checkpoint.seq)[0];
  if (beyond !== undefined && last !== null) {
    const c = beyond.checkpoint;
    findings.push({
      kind: 'truncated',
      file: last.file,
      line: last.line,
      message: `truncated after line ${last.line} of ${last.file}: checkpoint ${c.n} (${c.reason}, signed ${c.time}) names seq ${c.seq}, the log ends at seq ${scan.lastSeq}: ${missingLines(c.seq - scan.lastSeq)}`,
    });
  }
  const reported = new Set(findings.map((f) => f.file));
  for (const t of unseen.filter((u) => u.checkpoint.seq <= scan.lastSeq)) {
    const name = namesOf(t.checkpoint.file);
    if (reported.has(name)) continue;
    reported.add(name);
    findings.push({ kind: 'truncated', file: name, line: null, message: `checkpoint ${t.checkpoint.n} names seq ${t.checkpoint.seq} in ${name}, which does not hold it: lines were cut from it` });
  }

  let anchorVerdict: AuditLogVerification['anchor'] = options.anchor === undefined ? null : 'absent';
  if (options.anchor !== undefined && options.anchor !== null) {
    const before = findings.length;
    findings.push(...anchorFindings(options.anchor, scan, publicKeys));
    anchorVerdict = findings.length === before ? 'matches' : 'mismatch';
  }

  const trusted = cps?.trusted ?? [];
  const lastCheckpoint = trusted.at(-1)?.checkpoint ?? null;
  if (cps !== null && publicKeys === undefined) notes.push('checkpoint signatures were not checked (no public key given): whoever can edit the files could have written them too');
  if (cps === null && publicKeys === undefined) notes.push('no signed checkpoints: a chain recomputed after an edit, or a tail cut off, cannot be told from the original (configure audit.signingKey)');
  const covered = Math.max(0, ...trusted.filter((t) => scan.compared.has(t)).map((t) => t.checkpoint.seq));
  if (cps !== null && scan.lastSeq > covered && findings.length === 0) {
    notes.push(`the last ${scan.lastSeq - covered} lines (after seq ${covered}) are not covered by a checkpoint yet: written since the last one, as while meshgate runs`);
  }
  if (cps !== null && options.anchor === undefined) notes.push('the head was not compared with the anchor in the state store (--config … --anchor): a tail cut together with its checkpoints would not show');
  if (fromFile > 1) notes.push(`files before ${layout.rotatedName(fromFile)} were not expected (--from-file ${fromFile}): what they held was not checked`);
  const superseded = trusted[0]?.checkpoint.supersedes;
  if (superseded !== undefined) notes.push(`this log replaced another when it began (log ${short(superseded.stream)}, up to seq ${superseded.seq}), as checkpoint ${trusted[0]!.checkpoint.n} records`);

  return {
    ok: findings.length === 0,
    events: scan.events,
    files: files.map((f) => f.name),
    stream: scan.stream,
    lastSeq: scan.lastSeq,
    lastHash: scan.lastHash,
    checkpoints: { count: cps?.count ?? 0, signaturesChecked: cps !== null && publicKeys !== undefined, keys: cps?.keys ?? [], last: lastCheckpoint },
    anchor: anchorVerdict,
    findings,
    notes,
  };
}

interface Scan {
  readonly findings: LogFinding[];
  readonly events: number;
  readonly stream: string | null;
  readonly lastSeq: number;
  readonly lastHash: string;
  readonly lastAt: { readonly file: string; readonly line: number } | null;
  /** Trusted checkpoints whose line was found (matching or not). */
  readonly compared: Set<TrustedCheckpoint>;
  /** Numbers of files missing or swapped: what they held cannot be checked. */
  readonly unavailable: Set<number>;
  readonly names: Map<number, string>;
  /** The line the anchor names, when the scan passed it. */
  readonly anchorLine: { readonly hash: string; readonly file: number; readonly name: string; readonly line: number } | null;
}

async function scanFiles(layout: LogLayout, files: Awaited<ReturnType<typeof listLogFiles>>, trusted: readonly TrustedCheckpoint[], anchor: AuditAnchor | null, fromFile: number): Promise<Scan> {
  const findings: LogFinding[] = [];
  const bySeq = new Map<number, TrustedCheckpoint[]>();
  for (const t of trusted) bySeq.set(t.checkpoint.seq, [...(bySeq.get(t.checkpoint.seq) ?? []), t]);
  const compared = new Set<TrustedCheckpoint>();
  // Files removed by retention: what they held is not checked, and not missed.
  const unavailable = new Set<number>(Array.from({ length: fromFile - 1 }, (_, i) => i + 1));
  const names = new Map<number, string>();
  let stream: string | null = null;
  let expectedSeq: number | null = fromFile === 1 ? 1 : null;
  let prevHash: string | null = fromFile === 1 ? GENESIS_HASH : null;
  let events = 0;
  let lastSeq = 0;
  let lastHash = GENESIS_HASH;
  let lastAt: Scan['lastAt'] = null;
  let prevFile: { name: string; number: number; lastLine: number; swapped: boolean } | null = null;
  let lastGood: { name: string; line: number } | null = null;
  let rebuilt: { finding: { kind: FindingKind; file: string; line: number; message: string }; later: number } | null = null;
  let anchorLine: Scan['anchorLine'] = null;

  for (const f of files) {
    const expectedNumber: number = prevFile === null ? fromFile : prevFile.number + 1;
    let number: number = f.number ?? expectedNumber;
    let swapped = false;
    let lineNo = 0;
    const found = (kind: FindingKind, message: string, line: number | null = lineNo) => findings.push({ kind, file: f.name, line, message });
    for await (const { bytes, terminated } of linesForward(f.path)) {
      lineNo++;
      if (swapped) continue;
      if (!terminated) {
        found('broken', 'the file ends with an incomplete line (a torn write or an edit)');
        break;
      }
      const opened = openLine(bytes);
      let line: ChainedLine;
      if ('problem' in opened) {
        found(opened.problem.includes('line edited') ? 'edited' : 'broken', opened.problem);
        const loose = looseLine(bytes);
        if (loose === null) {
          expectedSeq = prevHash = null;
          continue;
        }
        line = loose;
      } else {
        line = opened.line;
      }
      let isHeader = false;
      if (lineNo === 1) {
        const start = fileStartOf(line);
        isHeader = start.file !== null && start.file >= 2;
        if (start.stream !== null && stream !== null && start.stream !== stream) {
          found('swapped', `${f.name} is from another audit stream (log ${short(start.stream)}, this one is ${short(stream)}): a file swapped in from another run`);
          swapped = true;
        } else if (start.file !== null && f.number !== null && start.file !== f.number) {
          found('swapped', `${f.name} says it is file ${start.file} of its log: renamed, or swapped in from elsewhere`);
          swapped = true;
        } else if (start.file !== null && start.file < expectedNumber) {
          found('swapped', `${f.name} says it is file ${start.file} of its log, which came before: a file swapped in from elsewhere`);
          swapped = true;
        }
        if (swapped) {
          unavailable.add(number);
          names.set(number, f.name);
          continue;
        }
        number = start.file ?? number;
        stream ??= start.stream;
        if (number > expectedNumber) {
          for (let k = expectedNumber; k < number; k++) unavailable.add(k);
          // One finding per gap, however many files it spans.
          const gap =
            number - expectedNumber === 1
              ? `file ${layout.rotatedName(expectedNumber)} (file ${expectedNumber} of the log): ${f.name} continues from it`
              : `files ${layout.rotatedName(expectedNumber)} … ${layout.rotatedName(number - 1)} (files ${expectedNumber} to ${number - 1} of the log): ${f.name} continues from the last of them`;
          findings.push({ kind: 'missing', file: layout.rotatedName(expectedNumber), line: null, message: `missing ${gap}` });
          expectedSeq = prevHash = null;
        } else if (prevFile !== null && prevFile.swapped) {
          expectedSeq = prevHash = null;
        } else if (prevFile !== null && expectedSeq !== null && line.seq > expectedSeq) {
          findings.push({
            kind: 'truncated',
            file: prevFile.name,
            line: prevFile.lastLine,
            message: `${prevFile.name} was cut after line ${prevFile.lastLine}: it ends at seq ${expectedSeq - 1}, ${f.name} continues from seq ${line.seq - 1}; ${missingLines(line.seq - expectedSeq)}`,
          });
          expectedSeq = prevHash = null;
        } else if (prevFile !== null && (line.seq !== expectedSeq || line.prev !== prevHash)) {
          found('swapped', `${f.name} does not continue ${prevFile.name}: its first line is not chained to that file's last (a file swapped in from elsewhere, or ${prevFile.name} rewritten)`);
          expectedSeq = prevHash = null;
        }
      }
      if (expectedSeq !== null && line.seq !== expectedSeq) found('broken', `seq ${line.seq} where ${expectedSeq} was expected (lines deleted, inserted or reordered)`);
      else if (prevHash !== null && line.prev !== prevHash) found('broken', "prev is not the previous line's hash (chain broken)");
      expectedSeq = line.seq + 1;
      prevHash = line.hash;
      if (!isHeader) events++;
      lastSeq = line.seq;
      lastHash = line.hash;
      lastAt = { file: f.name, line: lineNo };
      if (anchor !== null && line.seq === anchor.seq) anchorLine = { hash: line.hash, file: number, name: f.name, line: lineNo };
      for (const t of bySeq.get(line.seq) ?? []) {
        const c = t.checkpoint;
        compared.add(t);
        if (c.file !== number) {
          found('swapped', `checkpoint ${c.n} places seq ${c.seq} in file ${c.file}, but it is in ${f.name} (file ${number}): files renamed or swapped`);
        } else if (c.head !== line.hash) {
          if (rebuilt !== null) rebuilt.later++;
          else {
            const after = lastGood === null ? 'the start of the log' : `${lastGood.name} line ${lastGood.line}`;
            const finding = {
              kind: 'rebuilt' as const,
              file: f.name,
              line: lineNo,
              message: `chain rebuilt after ${after}: checkpoint ${c.n} (${c.reason}, signed ${c.time}) names hash ${short(c.head)} for seq ${c.seq}, the file has ${short(line.hash)}; the lines after that point, up to this one, were rewritten and their hashes recomputed`,
            };
            rebuilt = { finding, later: 0 };
            findings.push(finding);
          }
        } else if (rebuilt === null) {
          lastGood = { name: f.name, line: lineNo };
        }
      }
    }
    names.set(number, f.name);
    if (swapped) unavailable.add(number);
    prevFile = { name: f.name, number, lastLine: lineNo, swapped };
  }
  const r = rebuilt as { finding: { message: string }; later: number } | null;
  if (r !== null && r.later > 0) r.finding.message += ` (${r.later} later checkpoints disagree too)`;
  return { findings, events, stream, lastSeq, lastHash, lastAt, compared, unavailable, names, anchorLine };
}

function anchorFindings(anchor: AuditAnchor, scan: Scan, publicKeys: readonly AuditVerifier[] | undefined): LogFinding[] {
  const named = `the anchor '${anchor.id}' in the state store (seq ${anchor.seq}, anchored ${anchor.time})`;
  const out: LogFinding[] = [];
  if (anchor.checkpoint !== null && publicKeys !== undefined) {
    const opened = openCheckpoint(Buffer.from(anchor.checkpoint));
    const signedBy = 'problem' in opened ? undefined : publicKeys.find((k) => k.keyId === opened.checkpoint.key);
    if ('problem' in opened || signedBy === undefined || !signedBy.verify(opened.signed, opened.sig) || opened.checkpoint.seq !== anchor.seq || opened.checkpoint.head !== anchor.head) {
      out.push({ kind: 'forged', file: null, line: null, message: `the checkpoint stored with ${named} is not signed by a given key for that head: the anchor itself was altered` });
    }
  }
  if (scan.stream !== anchor.stream) {
    out.push({ kind: 'swapped', file: null, line: null, message: `these files are log ${short(scan.stream ?? '')}, but ${named} names log ${short(anchor.stream)}: the audit files were replaced` });
  } else if (scan.unavailable.has(anchor.file)) {
    // The file holding the anchored line is missing or swapped, and already said so.
  } else if (anchor.seq > scan.lastSeq && scan.lastAt !== null) {
    const { file, line } = scan.lastAt;
    out.push({ kind: 'truncated', file, line, message: `truncated after line ${line} of ${file}: ${named} names seq ${anchor.seq}, the log ends at seq ${scan.lastSeq}: ${missingLines(anchor.seq - scan.lastSeq)}` });
  } else if (scan.anchorLine === null) {
    out.push({ kind: 'truncated', file: null, line: null, message: `${named} names seq ${anchor.seq} in file ${anchor.file}, which no file holds` });
  } else if (scan.anchorLine.hash !== anchor.head) {
    const { name, line } = scan.anchorLine;
    out.push({ kind: 'rebuilt', file: name, line, message: `${named} names hash ${short(anchor.head)} for seq ${anchor.seq}, but line ${line} of ${name} has ${short(scan.anchorLine.hash)}: the chain was rewritten up to there` });
  } else if (scan.anchorLine.file !== anchor.file) {
    out.push({ kind: 'swapped', file: scan.anchorLine.name, line: scan.anchorLine.line, message: `${named} places seq ${anchor.seq} in file ${anchor.file}, but it is in ${scan.anchorLine.name}: files renamed or swapped` });
  }
  return out;
}
