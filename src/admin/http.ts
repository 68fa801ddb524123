/**
 * The admin API's HTTP plumbing: its status exceptions, body limit and body shapes on top of
 * src/transport/http/json.ts. No decisions live here.
 */
import type { IncomingMessage } from 'node:http';
import { mgError, type MeshgateError } from '../errors/index.ts';
import { readBody, statusOf as httpStatusOf } from '../transport/http/index.ts';

/** Every request body is a small JSON object; this bounds what a caller can make meshgate buffer. */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

export function statusOf(error: MeshgateError): number {
  return httpStatusOf(error, { codes: { MG_LEASE_NOT_FOUND: 404, MG_METRICS_OFF: 404, MG_POLICY_INVALID: 422 } });
}

/** A JSON object body (an empty body is `{}`); anything else is MG_USAGE naming the route's shape. */
export async function readJsonObject(req: IncomingMessage, shape: string): Promise<Record<string, unknown>> {
  const text = await readBody(req, { limit: MAX_ADMIN_BODY_BYTES, tooLargeHint: 'the admin API takes small JSON objects only' });
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw mgError('MG_USAGE', `the body is not JSON; send ${shape} with content-type application/json`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw mgError('MG_USAGE', `the body must be a JSON object: ${shape}`);
  }
  return value as Record<string, unknown>;
}

/** An optional string field; a present field of another type is MG_USAGE. */
export function stringField(body: Record<string, unknown>, name: string, shape: string): string | undefined {
  const value = Object.hasOwn(body, name) ? body[name] : undefined;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') throw mgError('MG_USAGE', `"${name}" must be a non-empty string; send ${shape}`);
  if (value.length > 4096) throw mgError('MG_USAGE', `"${name}" is longer than 4096 characters`);
  return value;
}
