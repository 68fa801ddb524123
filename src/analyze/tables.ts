/**
 * The tables a statement names, read with meshgate's own lenient SQL reader (the one that
 * sanitizes trace text), so quotes, comments and executable comments are read as MariaDB
 * reads them. It is approximate, and says so in the report: a table is taken where it
 * follows FROM, JOIN, UPDATE, INSERT/REPLACE [INTO], TABLE, DESCRIBE/DESC/EXPLAIN (a name) and the like,
 * comma lists after FROM and UPDATE included; views are taken for tables, a routine's (CALL)
 * or a trigger's tables are not seen, nor those of a statement cut short in the audit, nor
 * a table named only through a CTE or a derived table's alias (those names are dropped
 * when they match a CTE the statement defines).
 */
import { TokenReader, type Token } from '../engines/mysql/sql/index.ts';

export interface TableRef {
  /** Null when the statement does not qualify it: the session's database applies. */
  readonly database: string | null;
  readonly table: string;
}

/** Words after which a table name comes. */
const BEFORE_TABLE = new Set(['INSERT', 'REPLACE', 'FROM', 'JOIN', 'STRAIGHT_JOIN', 'INTO', 'UPDATE', 'TABLE', 'TABLES', 'DESCRIBE', 'DESC']);
/** Words that may sit between the word above and the table without being one. */
const MODIFIERS = new Set(['INTO', 'LOW_PRIORITY', 'DELAYED', 'HIGH_PRIORITY', 'IGNORE', 'QUICK', 'IF', 'NOT', 'EXISTS', 'TEMPORARY', 'ONLY']);
/** Words that end a table list or mean no table follows. */
const NOT_TABLE = new Set([
  'SELECT', 'WHERE', 'SET', 'VALUES', 'VALUE', 'ON', 'USING', 'GROUP', 'ORDER', 'LIMIT', 'HAVING', 'WINDOW', 'UNION', 'EXCEPT', 'INTERSECT',
  'LEFT', 'RIGHT', 'INNER', 'OUTER', 'CROSS', 'NATURAL', 'STRAIGHT_JOIN', 'JOIN', 'FOR', 'LOCK', 'PARTITION', 'AS', 'DUAL', 'WITH', 'RETURNING',
  'OUTFILE', 'DUMPFILE', 'PROCEDURE', 'INTO', 'FROM', 'STATUS', 'READ', 'WRITE', 'USE', 'FORCE', 'INDEX', 'KEY', 'DEFAULT', 'SELECT', 'LATERAL',
]);

const LOCK_MODES = new Set(['READ', 'WRITE', 'LOCAL', 'LOW_PRIORITY']);

/** Tables `sql` names, deduplicated, in order of first mention. */
export function tablesOf(sql: string): TableRef[] {
  const reader = new TokenReader(sql, true, undefined, { lenient: true });
  const found = new Map<string, TableRef>();
  const ctes = new Set<string>();
  let previous: Token | null = null;
  for (let token = reader.next(); token !== null && token.kind !== 'end'; token = reader.next()) {
    // Only a word as long as one of BEFORE_TABLE's (4 to 13 letters) is spelled out: most are not.
    const length = token.end - token.start;
    const word = length >= 4 && length <= 13 ? upperWord(reader, token) : null;
    // `WITH name AS (` and `, name AS (`: a CTE, whose name later reads like a table.
    if (token.kind === 'word' || token.kind === 'quoted') {
      const next = reader.peek();
      if (reader.isWord(next, 'AS') && previous !== null && (upperWord(reader, previous) === 'WITH' || upperWord(reader, previous) === 'RECURSIVE' || reader.isPunct(previous, ','))) {
        ctes.add(nameOf(reader, token).toLowerCase());
      }
    }
    const before = previous;
    previous = token;
    if (word === null || !BEFORE_TABLE.has(word)) continue;
    // ON DUPLICATE KEY UPDATE col = …, FOR UPDATE [NOWAIT | SKIP LOCKED]: no table follows.
    if (word === 'UPDATE' && (reader.isWord(before, 'KEY') || reader.isWord(before, 'FOR'))) continue;
    const list = word === 'FROM' || word === 'UPDATE' || word === 'TABLES';
    for (;;) {
      let name = reader.next();
      while (name !== null && MODIFIERS.has(upperWord(reader, name) ?? '')) name = reader.next();
      if (name === null) break;
      const ref = readName(reader, name);
      if (ref === null) break;
      const key = `${ref.database ?? ''}.${ref.table}`;
      if (!found.has(key)) found.set(key, ref);
      if (!list) break;
      // Skip an alias (`t AS x`, `t x`) and stop unless a comma follows.
      let after = reader.peek();
      if (reader.isWord(after, 'AS')) {
        reader.next();
        reader.next();
        after = reader.peek();
      } else if (after !== null && (after.kind === 'quoted' || (after.kind === 'word' && !NOT_TABLE.has(upperWord(reader, after) ?? '')))) {
        reader.next();
        after = reader.peek();
      }
      // LOCK TABLES a READ, b WRITE
      while (word === 'TABLES' && after !== null && LOCK_MODES.has(upperWord(reader, after) ?? '')) {
        reader.next();
        after = reader.peek();
      }
      if (!reader.isPunct(after, ',')) break;
      reader.next();
    }
  }
  return [...found.values()].filter((ref) => ref.database !== null || !ctes.has(ref.table.toLowerCase()));
}

/** `name` or `db.name` starting at `first`; null when `first` is no name (a subquery, a keyword). */
function readName(reader: TokenReader, first: Token): TableRef | null {
  if (first.kind === 'word' && (NOT_TABLE.has(upperWord(reader, first) ?? '') || /^[0-9]/.test(reader.sql[first.start] ?? ''))) return null;
  if (first.kind !== 'word' && first.kind !== 'quoted') return null;
  const head = nameOf(reader, first);
  if (!reader.isPunct(reader.peek(), '.')) return { database: null, table: head };
  reader.next();
  const second = reader.next();
  if (second === null || (second.kind !== 'word' && second.kind !== 'quoted')) return null;
  return { database: head, table: nameOf(reader, second) };
}

function nameOf(reader: TokenReader, token: Token): string {
  const text = reader.sql.slice(token.start, token.end);
  return token.kind === 'quoted' ? text.slice(1, -1).replaceAll('``', '`') : text;
}

function upperWord(reader: TokenReader, token: Token): string | null {
  return token.kind === 'word' && token.end - token.start <= 32 ? reader.sql.slice(token.start, token.end).toUpperCase() : null;
}
