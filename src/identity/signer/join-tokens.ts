/**
 * One-time join tokens: for a workload that has no service-account token to prove itself
 * with (a VM, a CI runner), an operator creates a token bound to one SPIFFE ID and hands it
 * over; its first successful use gets that ID a certificate, and then it is spent.
 *
 * `<caDir>/join-tokens.json` (mode 0600, written atomically under the CA lock) holds only
 * the SHA-256 of each token, its SPIFFE ID and its times: a copy of the file, or of a
 * backup, lets no one join. Spent tokens are kept until they would have expired, so a second
 * use is told "already used" rather than "unknown"; expired entries are dropped at each write.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mgError } from '../../errors/index.ts';
import { withCaLock } from '../ca-lock.ts';
import { exists, loadCa, missing, writeFileAtomic } from '../ca-store.ts';
import { formatDuration } from '../duration.ts';
import { parseSpiffeId } from '../spiffe.ts';

export const JOIN_TOKENS_FILE = 'join-tokens.json';
/** Recognisable in a leak scan and told apart from a JWT (which has dots) without parsing. */
export const JOIN_TOKEN_PREFIX = 'mgjoin_';
export const DEFAULT_JOIN_TOKEN_TTL_SECONDS = 3600;
/** A join token is for starting a workload, not a standing credential. */
export const MAX_JOIN_TOKEN_TTL_SECONDS = 7 * 86_400;
// 32 random bytes: 256 bits, base64url without padding.
const TOKEN_SHAPE = /^mgjoin_[A-Za-z0-9_-]{43}$/;
const NEW_TOKEN_HINT = 'ask the operator for a new one (`meshgate ca join-token`)';

interface Entry {
  /** Hex SHA-256 of the whole token; the token itself is never stored. */
  readonly sha256: string;
  readonly spiffeId: string;
  readonly created: string;
  readonly expires: string;
  readonly used: string | null;
}

interface TokenFile {
  readonly version: 1;
  readonly tokens: readonly Entry[];
}

export interface CreatedJoinToken {
  /** Shown once; only its hash is kept. */
  readonly token: string;
  readonly spiffeId: string;
  readonly expires: Date;
}

export function isJoinTokenShaped(token: string): boolean {
  return token.startsWith(JOIN_TOKEN_PREFIX);
}

function hashOf(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function isEntry(value: unknown): value is Entry {
  const e = value as Record<string, unknown> | null;
  return (
    typeof e === 'object' && e !== null &&
    typeof e['sha256'] === 'string' && typeof e['spiffeId'] === 'string' && typeof e['created'] === 'string' &&
    typeof e['expires'] === 'string' && (e['used'] === null || typeof e['used'] === 'string')
  );
}

export class JoinTokenStore {
  readonly caDir: string;
  readonly path: string;
  readonly #lockTimeoutMs: number | undefined;

  constructor(caDir: string, options: { lockTimeoutMs?: number } = {}) {
    this.caDir = caDir;
    this.path = join(caDir, JOIN_TOKENS_FILE);
    this.#lockTimeoutMs = options.lockTimeoutMs;
  }

  async #read(): Promise<TokenFile> {
    if (!(await exists(this.path))) return { version: 1, tokens: [] };
    let value: unknown;
    try {
      value = JSON.parse(await readFile(this.path, 'utf8'));
    } catch (error) {
      throw mgError('MG_CONFIG_INVALID', `${this.path} is not valid JSON; remove it (every join token in it stops working)`, error);
    }
    const record = value as { version?: unknown; tokens?: unknown } | null;
    if (record?.version !== 1 || !Array.isArray(record.tokens) || !record.tokens.every(isEntry)) {
      throw mgError('MG_CONFIG_INVALID', `${this.path} is not a join-token file meshgate knows; remove it (every join token in it stops working)`);
    }
    return { version: 1, tokens: record.tokens };
  }

  async #write(tokens: readonly Entry[], now: Date): Promise<void> {
    const live = tokens.filter((t) => new Date(t.expires).getTime() > now.getTime());
    await writeFileAtomic(this.path, `${JSON.stringify({ version: 1, tokens: live }, null, 2)}\n`, { secret: true });
  }

  /** Creates a token for `spiffeId`, which must be a workload ID in the CA's trust domain. */
  async create(options: { spiffeId: string; ttlSeconds?: number; now?: Date }): Promise<CreatedJoinToken> {
    const ttlSeconds = options.ttlSeconds ?? DEFAULT_JOIN_TOKEN_TTL_SECONDS;
    if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) throw new TypeError('ttlSeconds must be a positive integer');
    if (ttlSeconds > MAX_JOIN_TOKEN_TTL_SECONDS) {
      throw mgError('MG_USAGE', `--ttl ${formatDuration(ttlSeconds)} is longer than ${formatDuration(MAX_JOIN_TOKEN_TTL_SECONDS)}; a join token is for starting a workload, create it when you start one`);
    }
    const now = options.now ?? new Date();
    const id = parseSpiffeId(options.spiffeId);
    if (!(await exists(this.caDir))) throw missing(this.caDir, 'the directory does not exist');
    const token = `${JOIN_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const expires = new Date(now.getTime() + ttlSeconds * 1000);
    await this.#locked(async () => {
      const ca = await loadCa(this.caDir);
      if (id.trustDomain !== ca.metadata.trustDomain || id.path === '') {
        throw mgError('MG_USAGE', `--spiffe-id ${id.uri} must name a workload in the CA's trust domain, e.g. spiffe://${ca.metadata.trustDomain}/ns/<ns>/sa/<sa>`);
      }
      const { tokens } = await this.#read();
      const entry: Entry = { sha256: hashOf(token), spiffeId: id.uri, created: now.toISOString(), expires: expires.toISOString(), used: null };
      await this.#write([...tokens, entry], now);
    });
    return { token, spiffeId: id.uri, expires };
  }

  /** The SPIFFE ID a token is good for, without spending it; throws MG_JOIN_TOKEN_* when it is not. */
  async check(token: string, now: Date = new Date()): Promise<string> {
    return this.#usable((await this.#read()).tokens, token, now).spiffeId;
  }

  /**
   * Spends the token and returns its SPIFFE ID. The caller must hold the CA lock (see
   * signSvidForKey's underLock), which makes check-then-spend atomic across processes.
   */
  async redeemLocked(token: string, now: Date = new Date()): Promise<string> {
    const { tokens } = await this.#read();
    const entry = this.#usable(tokens, token, now);
    await this.#write(tokens.map((t) => (t === entry ? { ...t, used: now.toISOString() } : t)), now);
    return entry.spiffeId;
  }

  /** Check and spend in one step, taking the CA lock itself. */
  async redeem(token: string, now: Date = new Date()): Promise<string> {
    return this.#locked(() => this.redeemLocked(token, now));
  }

  #usable(tokens: readonly Entry[], token: string, now: Date): Entry {
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) {
      throw mgError('MG_JOIN_TOKEN_INVALID', `the credential is not a meshgate join token (${JOIN_TOKEN_PREFIX} followed by 43 characters); ${NEW_TOKEN_HINT}`);
    }
    const hash = hashOf(token);
    const entry = tokens.find((t) => t.sha256 === hash);
    if (entry === undefined) throw mgError('MG_JOIN_TOKEN_INVALID', `the join token is not known to this CA (mistyped, expired long ago, or made for another CA); ${NEW_TOKEN_HINT}`);
    if (new Date(entry.expires).getTime() <= now.getTime()) {
      throw mgError('MG_JOIN_TOKEN_EXPIRED', `the join token expired at ${entry.expires} (now ${now.toISOString()}); ${NEW_TOKEN_HINT}, with a --ttl long enough for the workload to start`);
    }
    if (entry.used !== null) {
      throw mgError('MG_JOIN_TOKEN_INVALID', `the join token was already used at ${entry.used}; a join token works once (renewals use the certificate it got): ${NEW_TOKEN_HINT}`);
    }
    return entry;
  }

  #locked<T>(fn: () => Promise<T>): Promise<T> {
    return withCaLock(this.caDir, fn, this.#lockTimeoutMs === undefined ? {} : { timeoutMs: this.#lockTimeoutMs });
  }
}
