/** Small pure helpers of the connection phase, kept apart from the session's state machine. */
import { randomBytes } from 'node:crypto';

/** Scramble bytes must not contain NUL (the greeting terminates strings with it). */
export function printableNonce(): Buffer {
  const nonce = randomBytes(20);
  for (let i = 0; i < nonce.length; i++) nonce[i] = 0x21 + (nonce[i]! % 0x5e);
  return nonce;
}

/**
 * The token a client sent as its password through mysql_clear_password: NUL-terminated,
 * perhaps pasted with its `Bearer ` prefix.
 */
export function tokenFromPassword(password: Buffer): string {
  let end = password.length;
  while (end > 0 && password[end - 1] === 0) end--;
  const text = password.toString('utf8', 0, end).trim();
  return text.startsWith('Bearer ') ? text.slice(7).trim() : text;
}
