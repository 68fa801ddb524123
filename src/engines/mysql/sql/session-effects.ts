/**
 * What a COM_QUERY text does to the session state meshgate follows:
 * - the databases its USE statements switch to: policy must allow each before the text goes
 *   upstream, as for COM_INIT_DB, and clients that do not take MariaDB's session tracking
 *   learn the current database from here;
 * - whether it turns profiling on or off: SHOW PROFILES lists statements as MariaDB received
 *   them, so meshgate leaves a profiling session's statements untagged.
 * Most statements mention neither, and cost one regular expression.
 */
import { statementVerb } from './classify.ts';
import { isKeyword, quoteEnd, readIdentifier, skipBlank, splitStatements } from './statements.ts';

export interface SessionEffects {
  /** The databases USE switches to, in order, read as MariaDB's default sql_mode reads the text. */
  readonly uses: readonly string[];
  /** Every database a USE could name under either reading of '\' in quotes: policy checks them all. */
  readonly possibleUses: readonly string[];
  /** A USE whose database meshgate cannot read (inside an executable comment, say): refuse the text. */
  readonly unreadableUse: boolean;
  /** What the text sets the session's profiling to; null when it leaves it alone. */
  readonly profiling: boolean | null;
}

const MAY_MATTER = /\buse\b|profiling/i;

export function sessionEffects(sql: string): SessionEffects | null {
  if (!MAY_MATTER.test(sql)) return null;
  const readings = sql.includes('\\') ? [splitStatements(sql, true), splitStatements(sql, false)] : [splitStatements(sql, true)];
  let uses: string[] = [];
  const possibleUses = new Set<string>();
  let unreadableUse = false;
  let profiling: boolean | null = null;
  readings.forEach((statements, reading) => {
    for (const statement of statements) {
      const verb = statementVerb(statement);
      if (verb === 'USE') {
        const database = readUse(statement);
        if (database === null) unreadableUse = true;
        else {
          possibleUses.add(database);
          if (reading === 0) uses.push(database);
        }
      } else if (reading === 0 && verb === 'SET' && /profiling/i.test(statement)) {
        profiling = readProfiling(statement) ?? profiling;
      }
    }
  });
  if (possibleUses.size === 0 && !unreadableUse && profiling === null) return null;
  if (unreadableUse) uses = [];
  return { uses, possibleUses: [...possibleUses], unreadableUse, profiling };
}

/** `USE db` (db unquoted or in backticks, comments around); null when not that shape. */
function readUse(statement: string): string | null {
  let i = skipBlank(statement, 0);
  if (i < 0 || !isKeyword(statement, i, 'USE')) return null;
  i = skipBlank(statement, i + 3);
  if (i < 0) return null;
  const database = readIdentifier(statement, i);
  if (database === null) return null;
  return skipBlank(statement, database.end) === statement.length ? database.name : null;
}

/**
 * The value a SET statement gives the session's profiling; null when it assigns no such
 * variable. An assignment this reader cannot follow counts as "on": a profiling session
 * taken for a plain one would list meshgate's tag in SHOW PROFILES.
 */
function readProfiling(statement: string): boolean | null {
  let i = skipBlank(statement, 0);
  if (i < 0 || !isKeyword(statement, i, 'SET')) return true;
  i = skipBlank(statement, i + 3);
  // SET STATEMENT var=value FOR stmt changes the variable for that one statement only.
  if (i < 0) return true;
  if (isKeyword(statement, i, 'STATEMENT')) return null;
  let result: boolean | null = null;
  for (;;) {
    let global = false;
    let userVariable = false;
    for (const scope of ['GLOBAL', 'SESSION', 'LOCAL']) {
      if (isKeyword(statement, i, scope)) {
        global = scope === 'GLOBAL';
        i = skipBlank(statement, i + scope.length);
        if (i < 0) return true;
        break;
      }
    }
    if (statement.startsWith('@@', i)) {
      i += 2;
      for (const scope of ['global.', 'session.', 'local.']) {
        if (statement.slice(i, i + scope.length).toLowerCase() === scope) {
          global = scope === 'global.';
          i += scope.length;
          break;
        }
      }
    } else if (statement[i] === '@') {
      userVariable = true;
      i++;
    }
    const name = readIdentifier(statement, i);
    if (name === null) return true;
    i = skipBlank(statement, name.end);
    if (i < 0) return true;
    if (statement.startsWith(':=', i)) i += 2;
    else if (statement[i] === '=') i++;
    else return true;
    const valueEnd = expressionEnd(statement, i);
    if (valueEnd < 0) return true;
    if (!global && !userVariable && name.name.toLowerCase() === 'profiling') {
      result = booleanValue(statement.slice(i, valueEnd)) ?? true;
    }
    if (valueEnd === statement.length) return result;
    i = skipBlank(statement, valueEnd + 1);
    if (i < 0) return true;
  }
}

/** Index of the ',' ending the expression that starts at `i`, or the text's end; -1 if unbalanced. */
function expressionEnd(statement: string, i: number): number {
  let depth = 0;
  while (i < statement.length) {
    const c = statement.charCodeAt(i);
    if (c === 0x27 || c === 0x22 || c === 0x60) {
      const end = quoteEnd(statement, i, c !== 0x60);
      if (end < 0) return -1;
      i = end;
      continue;
    }
    if (c === 0x28) depth++;
    else if (c === 0x29 && --depth < 0) return -1;
    else if (c === 0x2c && depth === 0) return i;
    i++;
  }
  return depth === 0 ? i : -1;
}

function booleanValue(raw: string): boolean | null {
  let value = raw.trim();
  if (value.length >= 2 && (value[0] === "'" || value[0] === '"') && value.at(-1) === value[0]) value = value.slice(1, -1);
  switch (value.toUpperCase()) {
    case '1':
    case 'ON':
    case 'TRUE':
      return true;
    case '0':
    case 'OFF':
    case 'FALSE':
    case 'DEFAULT':
      return false;
    default:
      return null;
  }
}
