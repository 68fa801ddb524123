/**
 * Idle upstream connections, kept per (account, capabilities, charset, database) so a new
 * session skips MariaDB's login. A connection comes back only from a session that ended
 * at a command boundary; it is reset (COM_RESET_CONNECTION: transactions rolled back,
 * variables, temporary tables and prepared statements gone) and put back on its database
 * before anyone else gets it, so nothing of one client's session reaches the next.
 * No connection outlives its lease: the pool asks before handing one out, and drops every
 * connection of a lease that ends.
 */
import type { Socket } from 'node:net';
import { Command, Header } from './codec/constants.ts';
import { encodeMessage, PacketFramer, type Frame } from './codec/framer.ts';
import { decodeOk } from './codec/generic.ts';
import type { UpstreamConnection, UpstreamLogin } from './upstream.ts';

export interface PoolOptions {
  /** Idle connections kept per key; more are closed. */
  readonly maxIdlePerKey: number;
  /** An idle connection unused this long is closed. */
  readonly idleTimeoutMs: number;
  /** How long a reset may take before the connection is given up. */
  readonly resetTimeoutMs?: number;
  /** Whether connections of this lease may still be used (null: a static account). */
  isLeaseUsable(leaseId: string | null): boolean;
}

interface Idle {
  readonly connection: UpstreamConnection;
  readonly leaseId: string | null;
  readonly timer: NodeJS.Timeout;
}

/** Ends a connection the way a client does, so MariaDB counts no aborted connection. */
export function quit(connection: UpstreamConnection): void {
  const socket = connection.socket;
  if (socket.destroyed) return;
  if (socket.writable) socket.end(encodeMessage(Buffer.from([Command.QUIT]), 0));
  setTimeout(() => socket.destroy(), 1000).unref();
}

export function poolKey(login: UpstreamLogin): string {
  return [login.user, login.capabilities, login.mariadbCapabilities, login.charset, login.maxPacketSize, login.database ?? ''].join('\0');
}

export class UpstreamPool {
  private readonly idle = new Map<string, Idle[]>();
  private closed = false;
  /** Counters for metrics and the benchmark. */
  readonly stats = { reused: 0, opened: 0, returned: 0, discarded: 0 };

  constructor(private readonly options: PoolOptions) {}

  /** An idle connection for this login, or null (the caller logs in). */
  take(login: UpstreamLogin): UpstreamConnection | null {
    const list = this.idle.get(poolKey(login));
    while (list !== undefined && list.length > 0) {
      const entry = list.pop()!;
      clearTimeout(entry.timer);
      const socket = entry.connection.socket;
      if (socket.destroyed || !this.options.isLeaseUsable(entry.leaseId)) {
        quit(entry.connection);
        this.stats.discarded++;
        continue;
      }
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      this.stats.reused++;
      return entry.connection;
    }
    return null;
  }

  /**
   * Takes back a connection whose session ended cleanly between commands; resets it and
   * keeps it if the reset succeeds and there is room, closes it otherwise.
   */
  give(login: UpstreamLogin, connection: UpstreamConnection, leaseId: string | null, role: string): void {
    const socket = connection.socket;
    const full = (this.idle.get(poolKey(login))?.length ?? 0) >= this.options.maxIdlePerKey;
    if (this.closed || full || socket.destroyed || !this.options.isLeaseUsable(leaseId)) {
      quit(connection);
      return;
    }
    resetConnection(socket, { database: login.database, role }, this.options.resetTimeoutMs ?? 2000).then(
      (status) => this.keep(login, { ...connection, status, leftover: null }, leaseId),
      () => {
        this.stats.discarded++;
        quit(connection);
      },
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

  get idleCount(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  /**
   * Closes every idle connection and keeps pooling. A pooled connection keeps the session
   * values MariaDB gave it at login (max_allowed_packet, ...); after changing globals, drain.
   */
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


  private keep(login: UpstreamLogin, connection: UpstreamConnection, leaseId: string | null): void {
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
    list.push({ connection, leaseId, timer });
    this.idle.set(key, list);
    this.stats.returned++;
  }
}

/**
 * COM_RESET_CONNECTION, then the role and database a fresh login has. MariaDB's reset
 * drops the active role without re-applying the account's default role, and keeps
 * whatever database the last session switched to. A login without a database cannot
 * "unselect" one, so there the connection is checked and given up if a session chose one.
 * Resolves with the server status of the final OK.
 */
export async function resetConnection(socket: Socket, state: { readonly database: string | null; readonly role: string }, timeoutMs: number): Promise<number> {
  const { database, role } = state;
  if (!/^[A-Za-z0-9_$]{1,64}$/.test(role)) throw new Error('role is not a plain identifier');
  const conversation = new Conversation(socket, timeoutMs);
  try {
    let reply = await conversation.ask(Buffer.from([Command.RESET_CONNECTION]), 1);
    expectOk(reply[0]!);
    reply = await conversation.ask(Buffer.from(`\x03SET ROLE \`${role}\``, 'latin1'), 1);
    expectOk(reply[0]!);
    if (database !== null) {
      reply = await conversation.ask(Buffer.concat([Buffer.from([Command.INIT_DB]), Buffer.from(database, 'utf8')]), 1);
      expectOk(reply[0]!);
    } else {
      const selected = await conversation.selectDatabase();
      if (selected !== null) throw new Error('a session selected a database');
    }
    return decodeOk(reply[reply.length - 1]!.payload).status;
  } finally {
    conversation.end();
  }
}

function expectOk(frame: Frame): void {
  if (frame.payload[0] !== Header.OK) throw new Error(`reset answered 0x${frame.payload[0]?.toString(16)}`);
}

/** A few request/response exchanges on an idle connection, off the sessions' hot path. */
class Conversation {
  private readonly framer = new PacketFramer(64 * 1024);
  private frames: Frame[] = [];
  private wake: (() => void) | null = null;
  private failure: Error | null = null;
  private readonly timer: NodeJS.Timeout;
  private readonly onData = (chunk: Buffer) => {
    try {
      this.frames.push(...this.framer.push(chunk));
    } catch (error) {
      this.failure = error as Error;
    }
    this.wake?.();
  };
  private readonly onEnd = () => {
    this.failure ??= new Error('connection closed during reset');
    this.wake?.();
  };

  constructor(private readonly socket: Socket, timeoutMs: number) {
    socket.on('data', this.onData);
    socket.on('close', this.onEnd);
    socket.on('error', this.onEnd);
    socket.resume();
    this.timer = setTimeout(() => {
      this.failure ??= new Error('reset timed out');
      this.wake?.();
    }, timeoutMs);
  }

  async ask(payload: Buffer, frames: number): Promise<Frame[]> {
    this.socket.write(encodeMessage(payload, 0));
    return this.collect(frames);
  }

  /** `SELECT DATABASE()`: one column, one row; with or without the EOF after the column. */
  async selectDatabase(): Promise<string | null> {
    this.socket.write(encodeMessage(Buffer.from('\x03SELECT DATABASE()', 'latin1'), 0));
    const [count] = await this.collect(1);
    if (count!.payload[0] !== 1) throw new Error('unexpected answer to SELECT DATABASE()');
    await this.collect(1); // column definition
    let [next] = await this.collect(1);
    if (next!.payload[0] === Header.EOF && next!.payload.length < 9) [next] = await this.collect(1);
    const row = next!.payload;
    const [end] = await this.collect(1);
    if (end!.payload[0] !== Header.EOF) throw new Error('unexpected end of SELECT DATABASE()');
    if (row[0] === 0xfb) return null;
    return row.subarray(1, 1 + (row[0] ?? 0)).toString('utf8');
  }

  end(): void {
    clearTimeout(this.timer);
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onEnd);
    this.socket.pause();
  }

  private async collect(count: number): Promise<Frame[]> {
    while (this.frames.length < count) {
      if (this.failure !== null) throw this.failure;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
    if (this.frames[0]?.payload[0] === Header.ERR) throw new Error('MariaDB refused the reset');
    return this.frames.splice(0, count);
  }
}
