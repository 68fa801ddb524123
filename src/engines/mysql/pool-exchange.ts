/**
 * What the pool says to MariaDB on an idle connection, off the sessions' byte stream: parking
 * a connection a session gave back, and renewing it for the next session.
 *
 * Both are COM_CHANGE_USER, because it is the only command after which MariaDB's session is
 * the one a login makes: it ends the transaction, drops temporary tables, prepared statements,
 * user variables and locks, copies every session variable from the globals as they are *now*,
 * applies the account's default role, selects the database, and replaces the connection
 * attributes. COM_RESET_CONNECTION does less: it keeps the database, the attributes and the
 * active role (a session's SET ROLE NONE survives it), and restores the login's character set
 * but not its collation.
 *
 * A login also does a few things COM_CHANGE_USER does not, so renewing makes up for them:
 * - CLIENT_IGNORE_SPACE adds IGNORE_SPACE to sql_mode, CLIENT_INTERACTIVE sets wait_timeout to
 *   interactive_timeout (MariaDB's server_mpvio_update_thd runs for logins only): one SET.
 * - init_connect runs at a login only: when it is set, a connection is not reused at all.
 * - The connection's packet limit is fixed when it opens, though @@max_allowed_packet follows
 *   the global after COM_CHANGE_USER: when the global has changed, the connection is not reused.
 * - COM_SET_OPTION changes the multi-statement flag for the connection's life: parking sets it
 *   back to what the login negotiated.
 * And COM_CHANGE_USER forgets less than a new connection has: profiling (parking stops it and
 * empties its history) and FOUND_ROWS() (renewing runs a SELECT first) survive it.
 */
import type { Socket } from 'node:net';
import { Capability, Command, Header } from './codec/constants.ts';
import { encodeMessage, PacketFramer, type Frame } from './codec/framer.ts';
import { decodeErr, decodeOk } from './codec/generic.ts';
import { decodeAuthSwitchRequest, encodeChangeUser, nativePasswordScramble } from './codec/handshake.ts';
import { mariadbFailure } from './login-failure.ts';
import type { UpstreamConnection, UpstreamLogin } from './upstream.ts';

/** What a parked connection shows in performance_schema.session_connect_attrs. */
export const POOL_PROGRAM_NAME = 'meshgate-pool';

/**
 * MariaDB 10.11 keeps profiling through COM_CHANGE_USER (and COM_RESET_CONNECTION): SHOW
 * PROFILES still lists the last session's statements, and once a session turned profiling on,
 * the next one is profiled too while @@profiling says 0. A statement run with a history size
 * of 0 empties the history, and turning profiling off while it is on stops the recording.
 */
const FORGET_PROFILES = ['SET SESSION profiling = 1, SESSION profiling_history_size = 0', 'DO 0', 'SET SESSION profiling = 0'];

const SET_OPTION_MULTI_STATEMENTS_ON = 0;
const SET_OPTION_MULTI_STATEMENTS_OFF = 1;

export interface Renewal {
  /** Server status flags after the change (autocommit), for the client's OK. */
  readonly status: number;
  /** False when a login would have given the client something this connection cannot. */
  readonly equalsLogin: boolean;
}

/** The capabilities the connection speaks with: what the login asked for and the server had. */
function negotiated(connection: UpstreamConnection, login: UpstreamLogin): number {
  return (login.capabilities & connection.greeting.capabilities & ~Capability.SSL) >>> 0;
}

/**
 * Clears what the last session left and marks the connection as the pool's: no database, the
 * pool's program_name, the identity the lease is for. Answers the packet limit the connection
 * logged in with (asked on the first parking, while @@session still tells it).
 */
export async function park(connection: UpstreamConnection, login: UpstreamLogin, packetLimit: number | null, timeoutMs: number): Promise<number> {
  const capabilities = negotiated(connection, login);
  const attributes = new Map([['program_name', POOL_PROGRAM_NAME]]);
  const identity = login.attributes.get('meshgate_identity');
  if (identity !== undefined) attributes.set('meshgate_identity', identity);
  const conversation = new Conversation(connection.socket, timeoutMs);
  try {
    const multi = capabilities & Capability.MULTI_STATEMENTS ? SET_OPTION_MULTI_STATEMENTS_ON : SET_OPTION_MULTI_STATEMENTS_OFF;
    conversation.send(Buffer.from([Command.SET_OPTION, multi, 0]));
    if (packetLimit === null) conversation.send(query('SELECT @@session.max_allowed_packet LIMIT 1'));
    for (const statement of FORGET_PROFILES) conversation.send(query(statement));
    conversation.send(changeUser(connection, login, capabilities, null, attributes));
    expectNotErr(await conversation.next(), 'COM_SET_OPTION');
    const limit = packetLimit ?? Number((await conversation.row(capabilities))[0]);
    // A server built without profiling refuses these, and then has no history to forget.
    for (let i = 0; i < FORGET_PROFILES.length; i++) await conversation.next();
    await conversation.authenticate(login.password, []);
    return limit;
  } finally {
    conversation.end();
  }
}

/** Makes a parked connection the session a fresh login for `login` would have made. */
export async function renew(connection: UpstreamConnection, login: UpstreamLogin, packetLimit: number, timeoutMs: number): Promise<Renewal> {
  const capabilities = negotiated(connection, login);
  const conversation = new Conversation(connection.socket, timeoutMs);
  try {
    // Asked before the change, which zeroes the session's status counters again. The SELECT
    // also sets FOUND_ROWS(), so the last session's row count does not survive either.
    conversation.send(query('SELECT @@global.init_connect, @@global.max_allowed_packet LIMIT 1'));
    conversation.send(changeUser(connection, login, capabilities, login.database, login.attributes));
    const [initConnect, globalLimit] = await conversation.row(capabilities);
    const loginOnly = loginOnlySettings(capabilities);
    const ok = await conversation.authenticate(login.password, loginOnly === null ? [] : [query(loginOnly)]);
    if (loginOnly !== null) expectOk(await conversation.next(), 'restoring login settings');
    const equalsLogin = (initConnect ?? '') === '' && Number(globalLimit) === packetLimit;
    return { status: decodeOk(ok.payload).status, equalsLogin };
  } finally {
    conversation.end();
  }
}

/** The SET that does what MariaDB does at a login, and not at COM_CHANGE_USER, for these capabilities. */
export function loginOnlySettings(capabilities: number): string | null {
  const parts: string[] = [];
  if (capabilities & Capability.IGNORE_SPACE) parts.push("SESSION sql_mode = CONCAT(@@session.sql_mode, ',IGNORE_SPACE')");
  if (capabilities & Capability.INTERACTIVE) parts.push('SESSION wait_timeout = @@session.interactive_timeout');
  return parts.length === 0 ? null : `SET ${parts.join(', ')}`;
}

function query(sql: string): Buffer {
  return Buffer.concat([Buffer.from([Command.QUERY]), Buffer.from(sql, 'latin1')]);
}

function changeUser(connection: UpstreamConnection, login: UpstreamLogin, capabilities: number, database: string | null, attributes: ReadonlyMap<string, string>): Buffer {
  return encodeChangeUser({
    capabilities,
    username: login.user,
    // MariaDB answers with a fresh nonce (an auth switch) once the login's nonce is used;
    // should it not, this is the answer to the login's nonce.
    authResponse: nativePasswordScramble(login.password, connection.greeting.nonce),
    database,
    charset: login.charset,
    authPlugin: 'mysql_native_password',
    attributes,
  });
}

function expectOk(frame: Frame, what: string): void {
  expectNotErr(frame, what);
  if (frame.payload[0] !== Header.OK) throw new Error(`${what}: answered 0x${frame.payload[0]?.toString(16)}`);
}

/** MariaDB's error, with its number where the pool reads it (1045: the account's password is refused). */
function expectNotErr(frame: Frame, what: string): void {
  if (frame.payload[0] === Header.ERR) {
    const err = decodeErr(frame.payload);
    throw mariadbFailure(err.code, `${what}: MariaDB answered ${err.code} (${err.message})`);
  }
}

/** A few request/response exchanges on an idle connection; requests may be pipelined. */
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
    this.failure ??= new Error('the connection closed');
    this.wake?.();
  };

  constructor(private readonly socket: Socket, timeoutMs: number) {
    socket.on('data', this.onData);
    socket.on('close', this.onEnd);
    socket.on('error', this.onEnd);
    socket.resume();
    this.timer = setTimeout(() => {
      this.failure ??= new Error(`no answer within ${timeoutMs} ms`);
      this.wake?.();
    }, timeoutMs);
  }

  send(payload: Buffer, seq = 0): void {
    this.socket.write(encodeMessage(payload, seq));
  }

  async next(): Promise<Frame> {
    while (this.frames.length === 0) {
      if (this.failure !== null) throw this.failure;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
    return this.frames.shift()!;
  }

  /**
   * The one row of a text-protocol SELECT, each column a string or null. (The SELECTs say
   * LIMIT 1: a session may have left sql_select_limit at 0.)
   */
  async row(capabilities: number): Promise<(string | null)[]> {
    const head = await this.next();
    expectNotErr(head, 'SELECT');
    const columns = head.payload[0]!;
    for (let i = 0; i < columns; i++) await this.next();
    if (!(capabilities & Capability.DEPRECATE_EOF)) await this.next(); // EOF after the columns
    const row = (await this.next()).payload;
    if (row[0] === Header.EOF && row.length < 9) throw new Error('SELECT: no row');
    const end = await this.next();
    if (end.payload[0] !== Header.EOF) throw new Error('SELECT: more than one row');
    const values: (string | null)[] = [];
    let at = 0;
    for (let i = 0; i < columns; i++) {
      if (row[at] === 0xfb) {
        values.push(null);
        at += 1;
        continue;
      }
      // Length-encoded strings; these values are short, but read the long forms too.
      const first = row[at]!;
      const [length, size] = first < 0xfb ? [first, 1] : first === 0xfc ? [row.readUInt16LE(at + 1), 3] : first === 0xfd ? [row.readUIntLE(at + 1, 3), 4] : [Number(row.readBigUInt64LE(at + 1)), 9];
      if (at + size + length > row.length) throw new Error('SELECT: row shorter than its columns');
      values.push(row.subarray(at + size, at + size + length).toString('utf8'));
      at += size + length;
    }
    return values;
  }

  /**
   * Finishes a COM_CHANGE_USER already sent: answers the auth switch (and sends `after` right
   * behind the answer), and resolves with the final OK.
   */
  async authenticate(password: string, after: readonly Buffer[]): Promise<Frame> {
    let reply = await this.next();
    if (reply.payload[0] === Header.EOF) {
      const request = decodeAuthSwitchRequest(reply.payload);
      if (request.plugin !== 'mysql_native_password') throw new Error(`COM_CHANGE_USER: MariaDB asked for auth plugin ${request.plugin}`);
      this.socket.write(Buffer.concat([encodeMessage(nativePasswordScramble(password, request.data), reply.seq + 1), ...after.map((payload) => encodeMessage(payload, 0))]));
      reply = await this.next();
    } else {
      for (const payload of after) this.send(payload);
    }
    expectOk(reply, 'COM_CHANGE_USER');
    return reply;
  }

  end(): void {
    clearTimeout(this.timer);
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onEnd);
    this.socket.pause();
  }
}
