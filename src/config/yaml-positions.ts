/**
 * YAML text → the parsed value, plus a way back from a field path to where it is written.
 * Validation sees plain values; an operator needs the line, so the parsed document's node
 * ranges are kept and a path is walked through them.
 */
import { LineCounter, isAlias, isMap, isNode, isScalar, isSeq, parseDocument, type Document } from 'yaml';

export interface SourcePosition {
  readonly line: number;
  readonly column: number;
  /** Character offset, for putting problems in document order. */
  readonly offset: number;
}

/**
 * Where `path` is written: the key of the deepest field on the path that exists (the field
 * itself, or the nearest parent when it is missing). Null when there is no such field below
 * the top level: a missing section has no line of its own.
 */
export type Locate = (path: readonly PropertyKey[]) => SourcePosition | null;

export const noPositions: Locate = () => null;

export interface YamlSyntaxProblem {
  readonly message: string;
  readonly position: SourcePosition | null;
}

export type ParsedYaml =
  | { readonly ok: true; readonly value: unknown; readonly locate: Locate }
  | { readonly ok: false; readonly problems: readonly YamlSyntaxProblem[] };

export function parseYamlWithPositions(text: string): ParsedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  const position = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col, offset };
  };
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((error) => ({
      // yaml's first line reads "… at line L, column C:"; the position is added back uniformly.
      message: (error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '').replace(/:$/, ''),
      position: position(error.pos[0]),
    }));
    return { ok: false, problems };
  }
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (error) {
    // Alias expansion limits (billion laughs) and unresolvable aliases surface here.
    return { ok: false, problems: [{ message: (error as Error).message, position: null }] };
  }
  return { ok: true, value, locate: (path) => locateIn(doc, path, position) };
}

function locateIn(doc: Document, path: readonly PropertyKey[], position: (offset: number) => SourcePosition): SourcePosition | null {
  const resolve = (node: unknown): unknown => (isAlias(node) ? node.resolve(doc) : node);
  let current = resolve(doc.contents);
  if (path.length === 0) return isNode(current) && current.range ? position(current.range[0]) : null;
  let found: SourcePosition | null = null;
  for (const segment of path) {
    if (isMap(current)) {
      // Keys compare as text: zod reports record keys as strings even where YAML read `3306:` as a number.
      const pair = current.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (pair === undefined) break;
      if (isNode(pair.key) && pair.key.range) found = position(pair.key.range[0]);
      current = resolve(pair.value);
    } else if (isSeq(current) && typeof segment === 'number') {
      const item: unknown = current.items[segment];
      if (!isNode(item) || !item.range) break;
      found = position(item.range[0]);
      current = resolve(item);
    } else {
      break;
    }
  }
  return found;
}
