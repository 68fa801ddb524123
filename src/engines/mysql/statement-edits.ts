/**
 * What goes upstream for a COM_QUERY / COM_STMT_PREPARE: the client's bytes, with objects it
 * creates owned by the role (`DEFINER=CURRENT_ROLE`, sql/definer.ts says why) and meshgate's
 * tag in front of every statement (sql/tag.ts): the first after the text's leading
 * whitespace, and with CLIENT_MULTI_STATEMENTS each later one after the whitespace that
 * follows its ';' — MariaDB shows each statement of a multi-statement text on its own in the
 * processlist, slow log and binlog, from there on. Later statements are tagged where the
 * text is read with certainty (sql/definer.ts statementPlan): every character before is
 * ASCII, and no statement before has a body that may hold ';'. A statement that would need a
 * second packet stays as sent.
 */
import type { Frame } from './codec/framer.ts';
import { HEADER_BYTES } from './codec/framer.ts';
import { spliceEdits, spliceTag, statementPlan, tagComment, type ByteEdit, type ServerFlavor } from './sql/index.ts';
import type { StatementText } from './statement-text.ts';

export interface UpstreamOptions {
  /** CLIENT_MULTI_STATEMENTS is on for this command: every statement in the text runs. */
  readonly multiStatements: boolean;
  readonly server?: ServerFlavor;
  /** How to tag; null: not at all (audit.tagStatements off, or a profiling session). */
  readonly tag: {
    /** The tag without its closing `*\/`. */
    readonly commentHead: string;
    /** The trace the first statement's tag names, if any. */
    readonly trace: string | null;
    /** The trace a later statement's tag names, by its verb (none where the query cache could answer it). */
    traceOf(verb: string | null): string | null;
    /** The span the tags name: the one meshgate's statement span will have. Absent: a random one per tag. */
    readonly spanId?: string;
  } | null;
}

/** The message to send upstream for the statement `text` that `frame` carries. */
export function upstreamBytes(frame: Frame, text: StatementText, options: UpstreamOptions): Buffer {
  const { multiStatements, server, tag } = options;
  // Past the codec's prefix, read the whole text only where a later statement may start there.
  const whole = text.isWhole || (multiStatements && text.bytes.indexOf(0x3b, 0) !== -1);
  const plan = statementPlan(whole ? text.whole() : text.decoded, { multiStatements, server, wholeText: whole });
  const owned: readonly ByteEdit[] = plan.edits;
  const tags: ByteEdit[] = tag === null ? [] : plan.starts.map((start) => ({ at: start.at, remove: 0, insert: tagComment(tag.commentHead, tag.traceOf(start.verb), tag.spanId) }));
  let edited: Frame = frame;
  for (const edits of tags.length > 0 ? [merge(owned, tags), owned] : [owned]) {
    if (edits.length === 0) break;
    const raw = spliceEdits(frame, edits);
    if (raw === null) continue;
    edited = { seq: frame.seq, lastSeq: frame.seq, payload: raw.subarray(HEADER_BYTES), raw };
    break;
  }
  if (tag === null) return edited.raw;
  return spliceTag(edited, tag.commentHead, tag.trace, tag.spanId) ?? edited.raw;
}

/** Both lists of edits in text order (a definer edit and a statement start never share a place). */
function merge(a: readonly ByteEdit[], b: readonly ByteEdit[]): ByteEdit[] {
  return [...a, ...b].sort((x, y) => x.at - y.at);
}
