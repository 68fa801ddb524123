/**
 * What the config schema expects at a field path, in words an operator reads: the keys a
 * mapping allows, the shape a value must have, what a required field is for. Read from the
 * schema itself (and its `.meta()`), so messages cannot drift from what is validated.
 */
import { z } from 'zod';

type Schema = z.core.$ZodType;

/** Set with `.meta()` on a field. */
export interface FieldMeta {
  /** What the field is for, with an example; said when it is missing. */
  readonly description?: string;
  /** The value's shape in plain words, where the structural one would be vague. */
  readonly expected?: string;
  /** A secret reference ({ env } or { file }): its value is never echoed, and never inline. */
  readonly secret?: boolean;
}

export interface FieldInfo {
  /** The schema with optional/default wrappers peeled off. */
  readonly schema: Schema;
  readonly meta: FieldMeta;
  /** Absent is fine (optional or defaulted). */
  readonly optional: boolean;
}

/** Unsafe integers are how zod marks an `.int()` without its own bound. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER;

function metaOf(schema: Schema): FieldMeta {
  const meta = z.globalRegistry.get(schema);
  if (meta === undefined) return {};
  return {
    ...(typeof meta.description === 'string' ? { description: meta.description } : {}),
    ...(typeof meta['expected'] === 'string' ? { expected: meta['expected'] } : {}),
    ...(meta['secret'] === true ? { secret: true } : {}),
  };
}

/** Peels wrappers that do not change what a value must look like; meta set on any layer counts. */
export function fieldInfo(schema: Schema): FieldInfo {
  let current = schema;
  let meta: FieldMeta = {};
  let optional = false;
  for (;;) {
    meta = { ...metaOf(current), ...meta };
    if (current instanceof z.ZodOptional || current instanceof z.ZodDefault || current instanceof z.ZodPrefault) {
      optional = true;
      current = current.unwrap() as Schema;
    } else if (current instanceof z.ZodNullable || current instanceof z.ZodReadonly || current instanceof z.ZodCatch) {
      current = current.unwrap() as Schema;
    } else if (current instanceof z.ZodPipe) {
      current = current.in as Schema;
    } else {
      return { schema: current, meta, optional };
    }
  }
}

function objectOptions(schema: Schema): z.ZodObject[] {
  const { schema: core } = fieldInfo(schema);
  if (core instanceof z.ZodObject) return [core];
  if (core instanceof z.ZodUnion) return (core.options as Schema[]).flatMap(objectOptions);
  return [];
}

/** The schema of the field at `path`, or undefined where the schema has no such field. */
export function schemaAt(root: Schema, path: readonly PropertyKey[]): Schema | undefined {
  let current: Schema | undefined = root;
  for (const segment of path) {
    if (current === undefined) return undefined;
    current = childSchema(current, segment);
  }
  return current;
}

function childSchema(schema: Schema, segment: PropertyKey): Schema | undefined {
  const { schema: core } = fieldInfo(schema);
  if (core instanceof z.ZodArray) return typeof segment === 'number' ? (core.element as Schema) : undefined;
  if (core instanceof z.ZodRecord) return typeof segment === 'string' ? (core.valueType as Schema) : undefined;
  // Through a union, the first form that has the field: the forms of one union never share a
  // field name with different meanings.
  for (const option of objectOptions(core)) {
    const child = (option.shape as Record<string, Schema>)[String(segment)];
    if (child !== undefined) return child;
  }
  return undefined;
}

/**
 * Keys a mapping accepts. For a union of mappings, the keys of the form `input` is closest
 * to (the one that knows most of its keys), or of every form when none stands out.
 */
export function allowedKeys(schema: Schema, input?: unknown): string[] {
  const forms = objectOptions(schema).map((option) => Object.keys(option.shape));
  if (forms.length > 1 && typeof input === 'object' && input !== null) {
    const given = Object.keys(input);
    const known = forms.map((keys) => given.filter((key) => keys.includes(key)).length);
    const best = Math.max(...known);
    if (best > 0 && known.filter((n) => n === best).length === 1) return forms[known.indexOf(best)]!;
  }
  return [...new Set(forms.flat())];
}

/** For each allowed key that is itself a mapping, the keys it accepts (for "belongs under"). */
export function nestedKeys(schema: Schema): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const option of objectOptions(schema)) {
    for (const [key, child] of Object.entries(option.shape as Record<string, Schema>)) {
      const keys = allowedKeys(child);
      if (keys.length > 0) out.set(key, keys);
    }
  }
  return out;
}

/** The shape of a value in plain words: "a whole number from 0 to 65535", "a list of strings". */
export function expectedText(schema: Schema): string {
  const { schema: core, meta } = fieldInfo(schema);
  if (meta.expected !== undefined) return meta.expected;
  if (core instanceof z.ZodString) return 'a string';
  if (core instanceof z.ZodBoolean) return 'true or false';
  if (core instanceof z.ZodNumber) return numberText(core);
  if (core instanceof z.ZodEnum) return `one of ${(core.options as readonly unknown[]).map((v) => String(v)).join(', ')}`;
  if (core instanceof z.ZodLiteral) return [...core.values].map((v) => JSON.stringify(v)).join(' or ');
  if (core instanceof z.ZodArray) {
    const element = expectedText(core.element as Schema);
    if (element === 'a string') return 'a list of strings';
    return `a list, each ${element}`;
  }
  if (core instanceof z.ZodObject) return `a mapping (keys: ${Object.keys(core.shape).join(', ')})`;
  if (core instanceof z.ZodRecord) return `a mapping of names to ${expectedText(core.valueType as Schema)}`;
  if (core instanceof z.ZodUnion) return (core.options as Schema[]).map(formText).join(' or ');
  return 'a different value';
}

/** One form of a union, as the operator would write it: `{ url, caFile? }`. */
function formText(schema: Schema): string {
  const { schema: core, meta } = fieldInfo(schema);
  if (meta.expected !== undefined) return meta.expected;
  if (!(core instanceof z.ZodObject)) return expectedText(core);
  const keys = Object.entries(core.shape as Record<string, Schema>).map(([key, child]) => {
    const { schema: value, optional } = fieldInfo(child);
    // A discriminator reads best with its value: `{ kind: oidc, subjectClaim? }`.
    if (value instanceof z.ZodLiteral) return `${key}: ${[...value.values].map(String).join(' | ')}`;
    return optional ? `${key}?` : key;
  });
  return `{ ${keys.join(', ')} }`;
}

function numberText(schema: z.ZodNumber): string {
  const noun = schema.isInt ? 'a whole number' : 'a number';
  const min = bound(schema.minValue);
  const max = bound(schema.maxValue);
  if (min !== null && max !== null) return `${noun} from ${min} to ${max}`;
  if (min !== null) return `${noun} of at least ${min}`;
  if (max !== null) return `${noun} of at most ${max}`;
  return noun;
}

function bound(value: number | null): number | null {
  return value === null || !Number.isFinite(value) || Math.abs(value) >= UNBOUNDED ? null : value;
}
