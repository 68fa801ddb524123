/**
 * W3C trace context carried in SQL as sqlcommenter comments: building meshgate's comment
 * (tag.ts puts it in front of the statement) and reading a client's traceparent back out. The
 * traceparent value itself (parse, format, new ids) is generic and lives in audit/.
 * https://google.github.io/sqlcommenter/spec/
 */
import { parseTraceparent, type TraceParent } from '../../../audit/index.ts';
import { scanSql } from './lex.ts';

const TRACEPARENT_KEY = 'traceparent';

/**
 * The traceparent of the last sqlcommenter comment in `sql` that carries a valid one, or null.
 * Comments inside quotes and executable comments are not comments, so they are skipped. Runs
 * on every statement: without the key anywhere the cost is one indexOf.
 */
export function extractTraceparent(sql: string): TraceParent | null {
  if (typeof sql !== 'string' || !sql.includes(TRACEPARENT_KEY)) return null;
  let found: TraceParent | null = null;
  // Comment starts only grow, so the key's next position is searched for at most once per
  // occurrence: thousands of empty comments before one key stay linear, not quadratic.
  let next = sql.indexOf(TRACEPARENT_KEY);
  try {
    scanSql(sql, true, (start, end) => {
      if (next !== -1 && next < start) next = sql.indexOf(TRACEPARENT_KEY, start);
      if (next === -1 || next >= end) return;
      const value = parseCommenterFields(sql.slice(start, end))?.get(TRACEPARENT_KEY);
      const tp = value === undefined ? null : parseTraceparent(value);
      if (tp !== null) found = tp;
    });
  } catch {
    return null;
  }
  return found;
}

/** `key='value',…` with surrounding whitespace allowed; null when the text is not that shape. */
export function parseCommenterFields(content: string): Map<string, string> | null {
  const text = content.trim();
  const fields = new Map<string, string>();
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq <= i || text.charCodeAt(eq + 1) !== 0x27) return null;
    const rawKey = text.slice(i, eq);
    let j = eq + 2;
    let rawValue = '';
    for (;;) {
      if (j >= text.length) return null;
      const c = text[j];
      if (c === '\\') {
        rawValue += text[j + 1] ?? '';
        j += 2;
      } else if (c === "'") {
        break;
      } else {
        rawValue += c;
        j++;
      }
    }
    const key = urlDecode(rawKey.replace(/\\(.)/gs, '$1'));
    const value = urlDecode(rawValue);
    if (key === null || value === null) return null;
    fields.set(key, value);
    i = j + 1;
    if (i < text.length) {
      if (text[i] !== ',') return null;
      i++;
      // Not in the spec, but some writers put a space after the comma.
      while (text[i] === ' ') i++;
      if (i >= text.length) return null;
    }
  }
  return fields.size > 0 ? fields : null;
}

function urlDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/**
 * `/*key='value',…*\/`, keys sorted, keys and values percent-encoded. Only RFC 3986
 * unreserved characters pass through unencoded (the spec's url_encode leaves `'`, `!`, `*`, `(`
 * and `)` to the implementation; we encode them all), so the output can hold no quote, no
 * `*\/`, and cannot begin like an executable comment (`/*!`, `/*M!`) or an optimizer hint
 * (`/*+`). Empty input gives ''.
 */
export function sqlcommenterComment(fields: Readonly<Record<string, string>>): string {
  const pairs: string[] = [];
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    if (value === undefined) continue;
    if (key === '') throw new TypeError('sqlcommenter keys must not be empty');
    // escape_meta_characters from the spec is a no-op here: ' is always encoded as %27.
    pairs.push(`${urlEncode(key)}='${urlEncode(String(value))}'`);
  }
  if (pairs.length === 0) return '';
  pairs.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return `/*${pairs.join(',')}*/`;
}

const UNRESERVED = /^[A-Za-z0-9._~-]*$/;
const HEX = '0123456789ABCDEF';

function urlEncode(s: string): string {
  if (UNRESERVED.test(s)) return s;
  // Via UTF-8 bytes rather than encodeURIComponent, which throws on lone surrogates.
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const unreserved =
      (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
    out += unreserved ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}
