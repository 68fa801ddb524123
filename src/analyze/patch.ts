/**
 * `--suggest`: the findings as edits to the policy files, printed as a unified diff the
 * operator reviews and applies (`git apply`, `patch -p1`) or not. Nothing here writes a
 * file. Edits are made on lines, keeping the files' own layout and comments:
 *
 * - a writing role nobody under the rule used for writing → the read-only role;
 * - Firestore `operations` with `write` nobody under the rule used → the classes used;
 * - an ALLOW rule that decided nothing → commented out, with why (a rule alone in its
 *   document, or every rule of a document, gets the note only: an empty document is invalid);
 * - what cannot be narrowed for everyone the rule matches → a note above the rule.
 */
import type { InventoryRule, PolicySourceText } from '../policy/index.ts';
import type { Findings } from './findings.ts';
import type { AuditUsage } from './usage.ts';

export type PolicyEdit =
  | { readonly kind: 'role'; readonly file: string; readonly line: number; readonly rule: string; readonly from: string; readonly to: string; readonly why: string }
  | { readonly kind: 'operations'; readonly file: string; readonly line: number; readonly rule: string; readonly keep: readonly string[]; readonly why: string }
  | { readonly kind: 'comment-out'; readonly file: string; readonly line: number; readonly rule: string; readonly why: string }
  | { readonly kind: 'note'; readonly file: string; readonly line: number; readonly rule: string; readonly why: string };

const MARK = 'meshgate analyze:';

/** The edits the findings call for, in file and line order. */
export function suggestEdits(found: Findings, rules: readonly InventoryRule[], usage: AuditUsage): PolicyEdit[] {
  const edits: PolicyEdit[] = [];
  const byId = new Map(rules.map((rule) => [rule.id, rule]));
  const window = `${found.window.first ?? '?'} – ${found.window.last ?? '?'}`;

  const unusedAllows = found.unusedRules.filter((u) => u.action === 'ALLOW' && !u.dryRun);
  const unusedInDoc = new Map<string, number>();
  for (const u of unusedAllows) {
    const rule = byId.get(u.rule)!;
    unusedInDoc.set(`${rule.file}\u0000${rule.docIndex}`, (unusedInDoc.get(`${rule.file}\u0000${rule.docIndex}`) ?? 0) + 1);
  }
  for (const u of found.unusedRules) {
    const rule = byId.get(u.rule)!;
    if (rule.line === null) continue;
    if (u.dryRun) {
      edits.push({ kind: 'note', file: rule.file, line: rule.line, rule: rule.id, why: `${rule.id} (a dry run, action AUDIT) matched nothing in ${window}: enforcing it would change no decision seen` });
      continue;
    }
    if (u.action !== 'ALLOW') {
      edits.push({ kind: 'note', file: rule.file, line: rule.line, rule: rule.id, why: `${rule.id} decided nothing in ${window}; a ${u.action} rule may still guard against what was not tried: keep it unless it is obsolete` });
      continue;
    }
    const wholeDoc = unusedInDoc.get(`${rule.file}\u0000${rule.docIndex}`) === rule.siblings;
    edits.push({
      kind: wholeDoc ? 'note' : 'comment-out',
      file: rule.file,
      line: rule.line,
      rule: rule.id,
      why: wholeDoc
        ? `${rule.id} allowed nothing in ${window}, nor did any rule of its document: remove the document if it is no longer needed`
        : `${rule.id} allowed nothing in ${window}: commented out; delete it if it is no longer needed`,
    });
  }

  // A role switch changes the rule for everyone it matches: only when none of them wrote.
  const silentByGrant = new Map<string, typeof found.unusedWrites>();
  for (const w of found.unusedWrites) silentByGrant.set(`${w.rule}\u0000${w.role}`, [...(silentByGrant.get(`${w.rule}\u0000${w.role}`) ?? []), w]);
  for (const [key, silent] of silentByGrant) {
    const [ruleId, role] = key.split('\u0000') as [string, string];
    const rule = byId.get(ruleId);
    if (rule === undefined || rule.line === null) continue;
    const users = [...usage.mysql.values()].filter((use) => use.rule === ruleId && use.role === role);
    const readOnly = silent[0]!.readOnlyRole;
    const names = silent.map((w) => w.identity).join(', ');
    if (readOnly !== null && users.length === silent.length) {
      for (const target of rule.mariadb) {
        if (target.role !== role || target.roleLine === null) continue;
        edits.push({ kind: 'role', file: rule.file, line: target.roleLine, rule: rule.id, from: role, to: readOnly, why: `nobody under ${rule.id} wrote in ${window} (${names}): ${readOnly} grants only SELECT on the same databases` });
      }
    } else {
      const instead = readOnly === null ? 'no role of the policy grants only SELECT on the same databases: consider creating one' : `consider a rule of their own granting ${readOnly}`;
      edits.push({ kind: 'note', file: rule.file, line: rule.line, rule: rule.id, why: `${names} never wrote through ${role} in ${window}; ${instead}` });
    }
  }

  const readersByRule = new Map<string, typeof found.firestoreReadOnly>();
  for (const f of found.firestoreReadOnly) readersByRule.set(f.rule, [...(readersByRule.get(f.rule) ?? []), f]);
  for (const [ruleId, readers] of readersByRule) {
    const rule = byId.get(ruleId);
    if (rule === undefined || rule.line === null) continue;
    const users = [...usage.firestore.values()].filter((use) => use.rule === ruleId);
    const names = readers.map((r) => r.identity).join(', ');
    if (users.length !== readers.length) {
      edits.push({ kind: 'note', file: rule.file, line: rule.line, rule: rule.id, why: `${names} only read under ${rule.id} in ${window}, others wrote: consider a read-only rule for them` });
      continue;
    }
    const used = new Set(users.flatMap((use) => [...use.operations.keys()]));
    for (const target of rule.firestore) {
      if (target.operationsLine === null || !target.operations?.includes('write')) continue;
      const keep = target.operations.filter((op) => op !== 'write' && (used.has(op) || op === 'read'));
      edits.push({ kind: 'operations', file: rule.file, line: target.operationsLine, rule: rule.id, keep: keep.length > 0 ? keep : ['read'], why: `nobody under ${rule.id} wrote in ${window} (${names})` });
    }
  }
  return edits.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
}

interface LineChange {
  /** Lines put before the line. */
  readonly before: string[];
  /** What the line becomes (empty: removed); undefined: kept. */
  replace?: string[];
}

/** The edits as one unified diff over `sources` (`--- a/FILE`, `+++ b/FILE`); '' when there are none. */
export function renderPatch(edits: readonly PolicyEdit[], sources: readonly PolicySourceText[]): string {
  const out: string[] = [];
  for (const source of sources) {
    const mine = edits.filter((edit) => edit.file === source.name);
    if (mine.length === 0) continue;
    const endsWithNewline = source.text.endsWith('\n');
    const lines = (endsWithNewline ? source.text.slice(0, -1) : source.text).split('\n');
    const changes = new Map<number, LineChange>();
    const change = (index: number) => {
      let c = changes.get(index);
      if (c === undefined) changes.set(index, (c = { before: [] }));
      return c;
    };
    for (const edit of mine) applyEdit(edit, lines, change);
    const hunks = diffHunks(lines, changes, endsWithNewline);
    if (hunks.length === 0) continue;
    out.push(`--- a/${source.name}`, `+++ b/${source.name}`, ...hunks);
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

function indentOf(line: string): string {
  return /^\s*/.exec(line)![0];
}

function applyEdit(edit: PolicyEdit, lines: string[], change: (index: number) => LineChange): void {
  const at = edit.line - 1;
  const line = lines[at];
  if (line === undefined) return;
  switch (edit.kind) {
    case 'role': {
      const replaced = line.replace(new RegExp(`(\\brole\\s*:\\s*)(["']?)${edit.from.replace(/\$/g, '\\$')}\\2`), (_m, head: string, quote: string) => `${head}${quote}${edit.to}${quote}`);
      const c = change(at);
      c.before.push(`${indentOf(line)}# ${MARK} ${edit.why}`);
      if (replaced !== line) c.replace = [replaced];
      return;
    }
    case 'operations': {
      const c = change(at);
      if (line.includes('[')) {
        c.before.push(`${indentOf(line)}# ${MARK} ${edit.why}`);
        c.replace = [line.replace(/\[[^\]]*\]/, `[${edit.keep.join(', ')}]`)];
        return;
      }
      // A block list: drop the items not kept.
      c.before.push(`${indentOf(line)}# ${MARK} ${edit.why}`);
      for (let i = at; i < lines.length; i++) {
        const item = /^\s*-\s*["']?([a-z]+)["']?\s*(#.*)?$/.exec(lines[i]!);
        if (item === null || indentOf(lines[i]!) !== indentOf(line)) break;
        if (!edit.keep.includes(item[1]!)) change(i).replace = [];
      }
      return;
    }
    case 'note':
      change(ruleItemLine(lines, at)).before.push(`${indentOf(lines[ruleItemLine(lines, at)]!)}# ${MARK} ${edit.why}`);
      return;
    case 'comment-out': {
      const start = ruleItemLine(lines, at);
      const dash = lines[start]!.indexOf('-');
      if (!/^\s*-/.test(lines[start]!)) {
        change(start).before.push(`${indentOf(lines[start]!)}# ${MARK} ${edit.why}`);
        return;
      }
      // The rule runs while lines are blank, comments, or indented past its dash.
      let end = start;
      for (let i = start + 1; i < lines.length; i++) {
        const text = lines[i]!;
        if (text.trim() === '' || text.trim().startsWith('#')) continue;
        if (indentOf(text).length <= dash || /^---/.test(text)) break;
        end = i;
      }
      change(start).before.push(`${indentOf(lines[start]!)}# ${MARK} ${edit.why}`);
      for (let i = start; i <= end; i++) {
        const text = lines[i]!;
        if (text.trim() === '') continue;
        change(i).replace = [`${text.slice(0, dash)}# ${text.slice(dash)}`];
      }
      return;
    }
  }
}

/** The `- ` line of the rule whose mapping starts at `index` (the dash may sit alone on the line above). */
function ruleItemLine(lines: readonly string[], index: number): number {
  if (/^\s*-/.test(lines[index] ?? '')) return index;
  return index > 0 && /^\s*-\s*$/.test(lines[index - 1] ?? '') ? index - 1 : index;
}

const CONTEXT = 3;

function diffHunks(lines: readonly string[], changes: ReadonlyMap<number, LineChange>, endsWithNewline: boolean): string[] {
  const changed = [...changes].filter(([, c]) => c.before.length > 0 || c.replace !== undefined).map(([i]) => i).sort((a, b) => a - b);
  const groups: [number, number][] = [];
  for (const index of changed) {
    const last = groups.at(-1);
    if (last !== undefined && index - last[1] <= 2 * CONTEXT) last[1] = index;
    else groups.push([index, index]);
  }
  const out: string[] = [];
  let delta = 0;
  let lastIndex = 0;
  const sizeOf = (i: number) => {
    const c = changes.get(i);
    return c === undefined ? 1 : c.before.length + (c.replace?.length ?? 1);
  };
  for (const [first, last] of groups) {
    for (; lastIndex < Math.max(0, first - CONTEXT); lastIndex++) delta += sizeOf(lastIndex) - 1;
    const from = Math.max(0, first - CONTEXT);
    const to = Math.min(lines.length - 1, last + CONTEXT);
    const body: string[] = [];
    let newCount = 0;
    // A run of changed lines reads as its old lines, then its new ones, as diff(1) prints it.
    let minus: string[] = [];
    let plus: string[] = [];
    const flush = () => {
      body.push(...minus, ...plus);
      minus = [];
      plus = [];
    };
    for (let i = from; i <= to; i++) {
      const c = changes.get(i);
      const old = lines[i]!;
      const last = i === lines.length - 1 && !endsWithNewline;
      for (const added of c?.before ?? []) plus.push(`+${added}`);
      newCount += c?.before.length ?? 0;
      if (c?.replace === undefined) {
        flush();
        body.push(` ${old}`);
        if (last) body.push('\\ No newline at end of file');
        newCount += 1;
      } else {
        minus.push(`-${old}`);
        if (last) minus.push('\\ No newline at end of file');
        for (const added of c.replace) plus.push(`+${added}`);
        if (last && c.replace.length > 0) plus.push('\\ No newline at end of file');
        newCount += c.replace.length;
      }
    }
    flush();
    const oldCount = to - from + 1;
    out.push(`@@ -${from + 1},${oldCount} +${from + 1 + delta},${newCount} @@`, ...body);
    for (; lastIndex <= to; lastIndex++) delta += sizeOf(lastIndex) - 1;
  }
  return out;
}
