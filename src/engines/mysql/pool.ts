/**
 * Idle upstream connections, kept per (account, capabilities, max packet, database) so a new
 * session skips most of MariaDB's login. A connection comes back only from a session that
 * ended at a command boundary. It is parked at once (COM_CHANGE_USER: the session's
 * transaction, variables, temporary tables, prepared statements and locks go; no database;
 * the pool's connection attributes), and renewed for the next session when it is taken
 * (COM_CHANGE_USER again, with that session's database, character set and attributes), so the
 * next session gets what a login would give it *now*, with the globals of now. Where a login
 * would still give something else (init_connect set, max_allowed_packet changed since the
 * connection opened), the connection is closed and the session logs in afresh. See
 * pool-exchange.ts for what is said to MariaDB and why.
 *
 * No connection outlives its lease: the pool asks before handing one out, and drops every
 * connection of a lease that ends.
 */
import { mgError } from '../../errors/index.ts';
import { Command } from './codec/constants.ts';
import { encodeMessage } from './codec/framer.ts';
import { park, renew, type Renewal } from './pool-exchange.ts';
import type { UpstreamConnection, UpstreamLogin } from './upstream.ts';

export interface PoolOptions {
  /** Idle connections kept per key; more are closed. */
  readonly maxIdlePerKey: number;
  /** An idle connection unused this long is closed. */
  readonly idleTimeoutMs: number;
  /** How long parking or renewing may take before the connection is given up. */
  readonly exchangeTimeoutMs?: number;
  /** Whether connections of this lease may still be used (null: a static account). */
  isLeaseUsable(leaseId: string | null): boolean;
}

interface Idle {
  readonly connection: UpstreamConnection;
  readonly user: string;
  readonly leaseId: string | null;
  /** Epoch milliseconds it was parked. */
  readonly since: number;
  /** The packet limit the connection logged in with (MariaDB fixes it at connect). */
  readonly packetLimit: number;
  readonly timer: NodeJS.Timeout;
}

/** Ends a connection the way a client does, so MariaDB counts no aborted connection. */
export function quit(connection: UpstreamConnection): void {
  const socket = connection.socket;
  if (socket.destroyed) return;
  // Nothing listens any more; a reset from the other side must not become an uncaught error.
  socket.on('error', () => undefined);
  if (socket.writable) socket.end(encodeMessage(Buffer.from([Command.QUIT]), 0));
  setTimeout(() => socket.destroy(), 1000).unref();
}

/**
 * What renewing cannot change: the capabilities and max packet size of the handshake, and the
 * database (a connection that logged in to it shows the account may use it, so the renewal
 * does not fail: a failed COM_CHANGE_USER costs a second, MariaDB's brute-force brake). The
 * character set and connection attributes are renewed, so they are not part of it.
 */
export function poolKey(login: UpstreamLogin): string {
  return [login.user, login.capabilities, login.mariadbCapabilities, login.maxPacketSize, login.database ?? ''].join('\0');
}

/** Packet limits learnt at parking, per connection, for connections handed to sessions. */
const packetLimits = new WeakMap<UpstreamConnection['socket'], number>();

export class UpstreamPool {
  private readonly idle = new Map<string, Idle[]>();
  private closed = false;
  /** Counters for metrics and the benchmark. */
  readonly stats = { reused: 0, opened: 0, returned: 0, discarded: 0 };

  constructor(private readonly options: PoolOptions) {}

  private get exchangeTimeoutMs(): number {
    return this.options.exchangeTimeoutMs ?? 3000;
  }

  /**
   * An idle connection renewed for this login, or null (the caller logs in). At most one
   * renewal is tried: what makes one fail (the database or the account gone, the globals a
   * login would differ in) holds for every connection of the key, and a refused
   * COM_CHANGE_USER costs a second each, so then they all go and the session logs in.
   * A renewal MariaDB refuses for the account's password (1045) throws MG_UPSTREAM_AUTH_FAILED,
   * as a refused login does: the caller looks into the account before logging in with it.
   */
  async take(login: UpstreamLogin): Promise<UpstreamConnection | null> {
    const key = poolKey(login);
    const list = this.idle.get(key);
    while (list !== undefined && list.length > 0) {
      const entry = list.pop()!;
      clearTimeout(entry.timer);
      const socket = entry.connection.socket;
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      if (socket.destroyed || !this.options.isLeaseUsable(entry.leaseId)) {
        this.discard(entry.connection);
        continue;
      }
      let renewal: Renewal | null = null;
      let refused: Error | null = null;
      try {
        renewal = await renew(entry.connection, login, entry.packetLimit, this.exchangeTimeoutMs);
      } catch (error) {
        // Otherwise given up below, like one a login would differ from.
        if ((error as { errno?: number }).errno === 1045) refused = error as Error;
      }
      // The lease may also have ended while the connection was being renewed.
      if (renewal === null || !renewal.equalsLogin || !this.options.isLeaseUsable(entry.leaseId)) {
        this.discard(entry.connection);
        this.discardKey(key);
        if (refused !== null) {
          throw mgError('MG_UPSTREAM_AUTH_FAILED', `MariaDB refused the renewal of a pooled connection as '${login.user}' (${refused.message})`, refused);
        }
        return null;
      }
      packetLimits.set(socket, entry.packetLimit);
      this.stats.reused++;
      return { ...entry.connection, status: renewal.status, leftover: null };
    }
    return null;
  }

  /**
   * Takes back a connection whose session ended cleanly between commands; parks it and keeps
   * it if parking succeeds and there is room, closes it otherwise.
   */
  give(login: UpstreamLogin, connection: UpstreamConnection, leaseId: string | null): void {
    const socket = connection.socket;
    const full = (this.idle.get(poolKey(login))?.length ?? 0) >= this.options.maxIdlePerKey;
    if (this.closed || full || socket.destroyed || !this.options.isLeaseUsable(leaseId)) {
      quit(connection);
      return;
    }
    park(connection, login, packetLimits.get(socket) ?? null, this.exchangeTimeoutMs).then(
      (packetLimit) => this.keep(login, { ...connection, status: 0, leftover: null }, leaseId, packetLimit),
      () => this.discard(connection),
    );
  }

  /** Closes every idle connection of a lease that ended. */
  evictLease(leaseId: string): void {
    for (const [key, list] of this.idle) {
      const kept = list.filter((entry) => {
        if (entry.leaseId !== leaseId) return true;
        clearTimeout(entry.timer);
        quit(entry.connection);
        return false;
      });
      if (kept.length === 0) this.idle.delete(key);
      else this.idle.set(key, kept);
    }
  }

  /** The idle connections as MariaDB's processlist names them (ID, USER), for operators. */
  idleConnections(): { readonly connectionId: number; readonly user: string; readonly leaseId: string | null; readonly since: number }[] {
    const out = [];
    for (const list of this.idle.values()) {
      for (const { connection, user, leaseId, since } of list) out.push({ connectionId: connection.connectionId, user, leaseId, since });
    }
    return out;
  }

  get idleCount(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  /** Closes every idle connection and keeps pooling. */
  drain(): void {
    for (const list of this.idle.values()) {
      for (const entry of list) {
        clearTimeout(entry.timer);
        quit(entry.connection);
      }
    }
    this.idle.clear();
  }

  close(): void {
    this.closed = true;
    this.drain();
  }


  private discardKey(key: string): void {
    for (const entry of this.idle.get(key) ?? []) {
      clearTimeout(entry.timer);
      this.discard(entry.connection);
    }
    this.idle.delete(key);
  }

  private discard(connection: UpstreamConnection): void {
    this.stats.discarded++;
    quit(connection);
  }

  private keep(login: UpstreamLogin, connection: UpstreamConnection, leaseId: string | null, packetLimit: number): void {
    const socket = connection.socket;
    const key = poolKey(login);
    const list = this.idle.get(key) ?? [];
    if (this.closed || list.length >= this.options.maxIdlePerKey || !this.options.isLeaseUsable(leaseId)) {
      quit(connection);
      return;
    }
    const forget = (idleTimeout: boolean) => {
      const current = this.idle.get(key);
      const index = current?.findIndex((entry) => entry.connection === connection) ?? -1;
      if (index !== -1) {
        clearTimeout(current![index]!.timer);
        current!.splice(index, 1);
      }
      if (idleTimeout) quit(connection);
      else socket.destroy();
    };
    // An idle connection MariaDB closes (wait_timeout, a KILL) leaves the pool at once.
    socket.once('close', () => forget(false));
    socket.once('error', () => forget(false));
    const timer = setTimeout(() => forget(true), this.options.idleTimeoutMs);
    timer.unref();
    list.push({ connection, user: login.user, leaseId, since: Date.now(), packetLimit, timer });
    this.idle.set(key, list);
    this.stats.returned++;
  }
}
