/**
 * Node's `X509Certificate.subjectAltName` is one string: `URI:spiffe://a/b, DNS:x`. A value
 * that holds a comma, quote, backslash or control character is printed as a JSON string
 * (`URI:"spiffe://a/\"b\u002cc"`), so splitting on ", " alone would let a crafted SAN smuggle
 * a second entry. Unquoted values never contain ',' or '"' (Node escapes them), which is what
 * makes the scan below unambiguous.
 */

export interface SubjectAltName {
  /** Node's label: `URI`, `DNS`, `IP Address`, `email`, `othername`, `DirName`, ... */
  readonly type: string;
  readonly value: string;
}

/** Splits Node's subjectAltName string into entries; throws TypeError if it is malformed. */
export function parseSubjectAltNames(text: string | undefined | null): SubjectAltName[] {
  if (text === undefined || text === null || text === '') return [];
  const entries: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (quoted) {
      current += ch;
      if (ch === '\\') {
        const next = text[i + 1];
        if (next === undefined) throw new TypeError('subjectAltName ends inside an escape');
        current += next;
        i++;
      } else if (ch === '"') {
        quoted = false;
      }
    } else if (ch === '"') {
      quoted = true;
      current += ch;
    } else if (ch === ',' && text[i + 1] === ' ') {
      entries.push(current);
      current = '';
      i++;
    } else {
      current += ch;
    }
  }
  if (quoted) throw new TypeError('subjectAltName has an unterminated quoted value');
  entries.push(current);
  return entries.map(parseEntry);
}

function parseEntry(entry: string): SubjectAltName {
  const colon = entry.indexOf(':');
  if (colon <= 0) throw new TypeError('subjectAltName entry has no type');
  const type = entry.slice(0, colon);
  const raw = entry.slice(colon + 1);
  if (!raw.startsWith('"')) return { type, value: raw };
  if (!raw.endsWith('"') || raw.length < 2) throw new TypeError('subjectAltName entry has a malformed quoted value');
  // Node writes these with JSON escaping; anything JSON.parse rejects is not a value we read.
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new TypeError('subjectAltName entry has a malformed quoted value');
  }
  if (typeof value !== 'string') throw new TypeError('subjectAltName entry has a malformed quoted value');
  return { type, value };
}

/** The URI SANs of a certificate, decoded. */
export function uriSansOf(subjectAltName: string | undefined | null): string[] {
  return parseSubjectAltNames(subjectAltName)
    .filter((san) => san.type === 'URI')
    .map((san) => san.value);
}
