/**
 * The findings for people: one section per kind of finding, each a table under a heading
 * that says what it means and what to do, and the audit window they hold for. Sections with
 * nothing to report say so in one line, so an empty report is visibly a clean one.
 */
import { TableWriter } from '../audit/index.ts';
import type { Findings } from './findings.ts';

type Columns = ConstructorParameters<typeof TableWriter>[0];

export function renderReport(found: Findings, out: (line: string) => void): void {
  const { first, last, events } = found.window;
  out(`Audit window: ${first ?? '(no events)'} to ${last ?? '(no events)'} (${events} events)`);
  if (found.policyVersions.length > 0) out(`Policy versions that decided: ${found.policyVersions.map((v) => `${v.version} (${v.events})`).join(', ')}`);
  out(`Role grants: ${found.grantsSource === 'mariadb' ? 'read from MariaDB' : 'guessed from role names (no --mariadb)'}`);

  section(out, 'Rules that decided nothing in the window', found.unusedRules.length, 'no rule went unused', [
    { title: 'RULE', max: 50 }, { title: 'ACTION', max: 16 }, { title: 'WHERE', max: 50, keepEnd: true }, { title: 'FROM', max: 200 },
  ], found.unusedRules.map((u) => [u.rule, u.dryRun && u.action !== 'AUDIT' ? `${u.action} (dry run)` : u.action, `${u.file}${u.line === null ? '' : `:${u.line}`}`, u.from]));

  section(out, 'Identities in a writing role that never wrote', found.unusedWrites.length, 'every identity in a writing role wrote', [
    { title: 'IDENTITY', max: 60, keepEnd: true }, { title: 'RULE', max: 40 }, { title: 'ROLE', max: 30 }, { title: 'SESSIONS', max: 8, align: 'right' },
    { title: 'STATEMENTS', max: 10, align: 'right' }, { title: 'SUGGEST', max: 30 }, { title: 'VERBS', max: 200 },
  ], found.unusedWrites.map((w) => [w.identity, w.rule, w.role, String(w.sessions), String(w.statements), w.readOnlyRole ?? '-', w.verbs.map((v) => `${v.verb}×${v.count}`).join(' ') || '-']));

  if (found.grantsSource === 'mariadb') {
    section(out, 'Tables a role may touch that no statement named', found.untouchedTables.length, 'every table a role may touch was named', [
      { title: 'ROLE', max: 30 }, { title: 'TOUCHED', max: 12, align: 'right' }, { title: 'UNTOUCHED', max: 400 },
    ], found.untouchedTables.map((t) => [t.role, `${t.touched}/${t.reachable}`, t.untouched.join(', ')]));
  }

  section(out, 'Firestore collection patterns no allowed call reached', found.untouchedCollections.length, 'every collection pattern of a used rule was reached', [
    { title: 'RULE', max: 50 }, { title: 'PATTERN', max: 200 },
  ], found.untouchedCollections.map((c) => [c.rule, c.pattern]));

  section(out, 'Callers refused repeatedly (a misaligned permission, or an attack)', found.repeatedDenials.length, 'no caller was refused that often', [
    { title: 'IDENTITY', max: 60, keepEnd: true }, { title: 'DENIED', max: 8, align: 'right' }, { title: 'FIRST', max: 24 }, { title: 'LAST', max: 24 },
    { title: 'RULE', max: 40 }, { title: 'REASON', max: 300 },
  ], found.repeatedDenials.map((d) => {
    const top = d.causes[0];
    const more = d.causes.length > 1 ? ` (+${d.causes.length - 1} other causes)` : '';
    return [d.identity, String(d.count), d.first ?? '-', d.last ?? '-', top?.rule ?? '-', `${top?.reason ?? '-'}${more}`];
  }));

  section(out, 'Firestore identities allowed to write that only read', found.firestoreReadOnly.length, 'every Firestore identity allowed to write wrote', [
    { title: 'IDENTITY', max: 60, keepEnd: true }, { title: 'RULE', max: 40 }, { title: 'GRANTED', max: 20 }, { title: 'USED', max: 100 },
  ], found.firestoreReadOnly.map((f) => [f.identity, f.rule, f.granted.join(','), f.operations.map((o) => `${o.operation}×${o.count}`).join(' ') || '-']));

  for (const note of found.notes) out(`\nnote: ${note}`);
}

function section(out: (line: string) => void, title: string, count: number, none: string, columns: Columns, rows: readonly string[][]): void {
  out('');
  if (count === 0) {
    out(`${title}: none (${none})`);
    return;
  }
  out(`${title} (${count}):`);
  const table = new TableWriter(columns, out);
  for (const row of rows) table.row(row);
  table.end();
}
