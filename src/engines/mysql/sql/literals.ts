/**
 * The values of SQL literals as MariaDB reads them, for readers that must look inside: a
 * '…' or "…" string with its escapes, and the bytes of a hex or bit literal (`0x…`, `X'…'`,
 * `0b…`, `B'…'`) as latin1 text.
 */
import type { Token, TokenReader } from './tokens.ts';

/** The value of the '…' or "…" literal `t`, '\' escaping in it or not. */
export function quotedValue(sql: string, t: Token, escapes: boolean): string {
  const quote = sql[t.start]!;
  const closed = t.end - t.start >= 2 && sql[t.end - 1] === quote;
  const body = sql.slice(t.start + 1, closed ? t.end - 1 : t.end);
  const doubled = quote + quote;
  if (!escapes || !body.includes('\\')) return body.includes(doubled) ? body.replaceAll(doubled, quote) : body;
  // By hand: a callback per escape would cost a million calls for a megabyte of them.
  let out = '';
  let from = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\' && !(c === quote && body[i + 1] === quote)) continue;
    const next = body[i + 1] ?? '';
    out += body.slice(from, i) + (c === quote ? quote : (ESCAPES[next] ?? next));
    from = ++i + 1;
  }
  return out + body.slice(from);
}

/** What MariaDB makes of `\x` in a literal; any other `\x` is `x`. */
const ESCAPES: Readonly<Record<string, string>> = { '0': '\0', b: '\b', n: '\n', r: '\r', t: '\t', Z: '\x1a', '%': '\\%', _: '\\_' };

/**
 * The bytes (as latin1 text) of a hex or bit literal at `t` — `0x…`, `0b…`, or `X'…'` / `B'…'`
 * (whose quoted part it then consumes) — or null when `t` is none.
 */
export function wordLiteral(sql: string, t: Token, r: TokenReader): string | null {
  const length = t.end - t.start;
  const c = sql.charCodeAt(t.start) | 0x20;
  if (length === 1 && (c === 0x78 /* x */ || c === 0x62 /* b */)) {
    const next = r.peek();
    if (next === null || next.kind !== 'string' || next.start !== t.end || sql[next.start] !== "'") return null;
    r.next();
    const digits = sql.slice(next.start + 1, next.end - 1);
    return c === 0x78 ? hexText(digits) : bitText(digits);
  }
  if (length > 2 && sql.charCodeAt(t.start) === 0x30 /* 0 */) {
    const kind = sql.charCodeAt(t.start + 1);
    if (kind === 0x78 /* x */) return hexText(sql.slice(t.start + 2, t.end));
    if (kind === 0x62 /* b */) return bitText(sql.slice(t.start + 2, t.end));
  }
  return null;
}

function hexText(digits: string): string | null {
  if (!/^[0-9a-f]*$/i.test(digits)) return null;
  return Buffer.from(digits.length % 2 === 0 ? digits : `0${digits}`, 'hex').toString('latin1');
}

function bitText(digits: string): string | null {
  if (!/^[01]*$/.test(digits)) return null;
  const padded = digits.padStart(Math.ceil(digits.length / 8) * 8, '0');
  let out = '';
  for (let i = 0; i < padded.length; i += 8) out += String.fromCharCode(parseInt(padded.slice(i, i + 8), 2));
  return out;
}
