/**
 * Follows the server's side of the command phase without buffering it: meshgate relays
 * upstream bytes to the client as they arrive and only looks at the first bytes of each
 * packet (packet-heads.ts), to learn where each response ends and what it said (rows,
 * affected rows, errors, prepared statement ids, LOCAL INFILE requests).
 *
 * Every packet is checked against what may come next; a packet that may not is refused
 * with MG_UPSTREAM_PROTOCOL naming the command and what arrived, never taken for something
 * else: one misread packet would put every later answer under the wrong command.
 * https://mariadb.com/kb/en/result-set-packets/  https://mariadb.com/kb/en/com_stmt_prepare/
 * https://mariadb.com/kb/en/com_stmt_execute/  https://mariadb.com/kb/en/com_stmt_fetch/
 */
import { mgError, type MeshgateError } from '../../../errors/index.ts';
import { Header, MAX_PACKET_PAYLOAD, ServerStatus } from './constants.ts';
import type { ResponseShape } from './commands.ts';
import { decodeErr, decodeOk, sessionSchemaChange, type ErrPacket } from './generic.ts';
import { PacketHeadScanner } from './packet-heads.ts';

export interface ResponseOutcome {
  readonly rowsReturned: number;
  readonly rowsAffected: number;
  readonly error: ErrPacket | null;
  /** Statement id from COM_STMT_PREPARE_OK. */
  readonly statementId: number | null;
  /** How many parameters the statement takes, from COM_STMT_PREPARE_OK. */
  readonly preparedParameters: number | null;
  readonly status: number;
  /**
   * The current database, when the server's session tracking announced a change (USE, or
   * DROP DATABASE of the current one: ''); undefined when it did not.
   */
  readonly schema: string | undefined;
}

export interface ResponseHandler {
  /** A response finished, in the order the commands were sent. */
  onResponse(outcome: ResponseOutcome): void;
  /** The server asks the client for a local file (LOAD DATA LOCAL INFILE). */
  onLocalInfileRequest(filename: string): void;
  /** An error arrived while no response was expected (the server killing the connection). */
  onUnsolicited(head: Buffer): void;
}

type Phase = 'first' | 'columns' | 'columnsEof' | 'rows' | 'prepareParams' | 'prepareParamsEof' | 'prepareColumns' | 'prepareColumnsEof' | 'fields';

interface Pending {
  readonly shape: ResponseShape;
  /** The command's name, for errors. */
  readonly command: string;
  /** Rows in the binary protocol, each starting 0x00 (an execute with a cursor, a fetch). */
  readonly binary: boolean;
  phase: Phase;
  /** Definitions still to come in the current metadata block, of `total`. */
  left: number;
  total: number;
  preparedColumns: number;
  preparedParameters: number | null;
  rowsReturned: number;
  rowsAffected: number;
  error: ErrPacket | null;
  statementId: number | null;
  status: number;
  schema: string | undefined;
}

/** What a packet looked like, for an error message: its kind and size, never its content. */
function describe(first: number, length: number): string {
  const kind = first === Header.OK ? 'an OK packet' : first === Header.EOF ? 'an EOF packet' : first === Header.ERR ? 'an ERR packet' : first < 0 ? 'an empty packet' : `a packet starting 0x${first.toString(16).padStart(2, '0')}`;
  return `${kind} of ${length} byte(s)`;
}

export class ResponseTracker {
  private readonly queue: Pending[] = [];
  private readonly scanner = new PacketHeadScanner((head, length) => this.onPacketHead(head, length));
  /** The length of the packet whose head is being looked at. */
  private packetLength = 0;

  constructor(
    private readonly deprecateEof: boolean,
    private readonly handler: ResponseHandler,
  ) {}

  get pendingResponses(): number {
    return this.queue.length;
  }

  /** Nothing expected and no packet half-read: the connection is between commands. */
  get idle(): boolean {
    return this.queue.length === 0 && !this.scanner.midPacket;
  }

  /** `command`: the command's name, for the error that names it should its answer go astray. */
  expect(shape: ResponseShape, command: string): void {
    if (shape === 'none') return;
    this.queue.push({
      shape,
      command,
      binary: shape === 'cursor' || shape === 'rows',
      phase: shape === 'rows' ? 'rows' : shape === 'fields' ? 'fields' : 'first',
      left: 0,
      total: 0,
      preparedColumns: 0,
      preparedParameters: null,
      rowsReturned: 0,
      rowsAffected: 0,
      error: null,
      statementId: null,
      status: 0,
      schema: undefined,
    });
  }

  /** Throws MG_UPSTREAM_PROTOCOL when the server sends what no answer may hold at that point. */
  scan(chunk: Buffer): void {
    this.scanner.scan(chunk);
  }

  private onPacketHead(head: Buffer, packetLength: number): void {
    this.packetLength = packetLength;
    const first = head.length > 0 ? head[0]! : -1;
    const pending = this.queue[0];
    if (pending === undefined) {
      if (first !== Header.ERR) throw this.unexpected(null, 'nothing (no command is waiting for an answer)', first);
      this.handler.onUnsolicited(head);
      return;
    }
    switch (pending.phase) {
      case 'first':
        return this.onFirst(pending, head, first);
      case 'columns':
      case 'prepareParams':
      case 'prepareColumns':
        return this.onDefinition(pending, head, first);
      case 'columnsEof':
      case 'prepareParamsEof':
      case 'prepareColumnsEof':
        return this.onMetadataEnd(pending, head, first);
      case 'rows':
        if (first === Header.ERR) return this.fail(pending, head);
        if (first === Header.EOF && this.isTerminator()) return this.finishResultSet(pending, head);
        if (pending.binary && first !== Header.OK) throw this.unexpected(pending, 'a binary row (0x00) or the end of the rows', first);
        pending.rowsReturned++;
        return;
      case 'fields':
        if (first === Header.ERR) return this.fail(pending, head);
        // A column definition starts with its catalog, never 0xFE: this is the end.
        if (first === Header.EOF && this.isTerminator()) return this.complete();
        return;
    }
  }

  private onFirst(pending: Pending, head: Buffer, first: number): void {
    if (first === Header.ERR) return this.fail(pending, head);
    if (pending.shape === 'single') {
      if (first === Header.OK) {
        pending.rowsAffected += safeOk(head)?.affectedRows ?? 0;
        pending.schema = safeSchemaChange(head) ?? pending.schema;
      }
      return this.complete();
    }
    if (pending.shape === 'prepare') {
      // COM_STMT_PREPARE_OK: 0x00, statement id (4), columns (2), parameters (2), …
      if (first !== Header.OK || head.length < 9) throw this.unexpected(pending, 'COM_STMT_PREPARE_OK or an error', first);
      pending.statementId = head.readUInt32LE(1);
      pending.preparedColumns = head.readUInt16LE(5);
      pending.preparedParameters = head.readUInt16LE(7);
      return this.startDefinitions(pending, 'prepareParams', pending.preparedParameters);
    }
    if (first === Header.OK) {
      const ok = safeOk(head);
      pending.rowsAffected += ok?.affectedRows ?? 0;
      pending.status = ok?.status ?? 0;
      if (pending.status & ServerStatus.SESSION_STATE_CHANGED) pending.schema = safeSchemaChange(head) ?? pending.schema;
      if (!(pending.status & ServerStatus.MORE_RESULTS_EXISTS)) this.complete();
      return;
    }
    // LOAD DATA LOCAL cannot be prepared: only a text query may ask for a file.
    if (first === Header.LOCAL_INFILE && pending.shape === 'result') {
      this.handler.onLocalInfileRequest(head.toString('utf8', 1));
      return;
    }
    const columns = columnCount(head);
    if (columns === null) throw this.unexpected(pending, 'OK, an error or a result set', first);
    this.startDefinitions(pending, 'columns', columns);
  }

  private startDefinitions(pending: Pending, phase: 'columns' | 'prepareParams' | 'prepareColumns', count: number): void {
    pending.left = pending.total = count;
    if (count > 0) pending.phase = phase;
    else if (phase === 'prepareParams') this.startDefinitions(pending, 'prepareColumns', pending.preparedColumns);
    else this.complete();
  }

  private onDefinition(pending: Pending, head: Buffer, first: number): void {
    // Neither can start a definition (0xFF and a short 0xFE are no length-encoded catalog).
    if (first === Header.ERR) return this.fail(pending, head);
    if (first === Header.EOF && this.packetLength < 9) throw this.unexpected(pending, `definition ${pending.total - pending.left + 1} of ${pending.total}`, first);
    if (--pending.left > 0) return;
    if (!this.deprecateEof) {
      pending.phase = pending.phase === 'columns' ? 'columnsEof' : pending.phase === 'prepareParams' ? 'prepareParamsEof' : 'prepareColumnsEof';
      return;
    }
    this.afterMetadata(pending, 0);
  }

  /**
   * The EOF after a block of definitions (without DEPRECATE_EOF). An execute asking for a
   * cursor may get an ERR in its place: MariaDB sends the metadata before it materialises
   * the cursor, and ends it with an error when that fails (sql_cursor.cc,
   * Materialized_cursor::open: "Commit or rollback metadata in the client-server protocol").
   */
  private onMetadataEnd(pending: Pending, head: Buffer, first: number): void {
    if (first === Header.ERR) return this.fail(pending, head);
    if (first !== Header.EOF || !this.isTerminator()) throw this.unexpected(pending, 'the EOF ending the column definitions, or an error', first);
    this.afterMetadata(pending, eofStatus(head));
  }

  /** `status`: of the EOF that ended the metadata (0 under DEPRECATE_EOF, where none does). */
  private afterMetadata(pending: Pending, status: number): void {
    switch (pending.phase) {
      case 'prepareParams':
      case 'prepareParamsEof':
        return this.startDefinitions(pending, 'prepareColumns', pending.preparedColumns);
      case 'prepareColumns':
      case 'prepareColumnsEof':
        return this.complete();
      default:
        // With a cursor open the rows wait for COM_STMT_FETCH; a statement the server runs
        // without one (CALL) sends them now, like any result set. Under DEPRECATE_EOF an
        // opened cursor's metadata still ends with a terminator (an OK in EOF form, flagged
        // CURSOR_EXISTS), which the rows phase takes as an empty result set's end.
        if (pending.shape === 'cursor' && status & ServerStatus.CURSOR_EXISTS) {
          pending.status = status;
          return this.complete();
        }
        pending.phase = 'rows';
    }
  }

  /** A 0xFE packet ends the rows: a short EOF, or with DEPRECATE_EOF an OK in EOF's clothing. */
  private isTerminator(): boolean {
    return this.deprecateEof ? this.packetLength < MAX_PACKET_PAYLOAD : this.packetLength < 9;
  }

  private finishResultSet(pending: Pending, head: Buffer): void {
    pending.status = this.deprecateEof ? (safeOk(head)?.status ?? 0) : eofStatus(head);
    if (pending.status & ServerStatus.MORE_RESULTS_EXISTS) pending.phase = 'first';
    else this.complete();
  }

  private fail(pending: Pending, head: Buffer): void {
    pending.error ??= safeErr(head);
    this.complete();
  }

  private complete(): void {
    const done = this.queue.shift()!;
    this.handler.onResponse({
      rowsReturned: done.rowsReturned,
      rowsAffected: done.rowsAffected,
      error: done.error,
      statementId: done.statementId,
      preparedParameters: done.preparedParameters,
      status: done.status,
      schema: done.schema,
    });
  }

  private unexpected(pending: Pending | null, expected: string, first: number): MeshgateError {
    const during = pending === null ? 'between commands' : `in the answer to ${pending.command}`;
    return mgError(
      'MG_UPSTREAM_PROTOCOL',
      `MariaDB sent ${describe(first, this.packetLength)} ${during} where meshgate expected ${expected}; the session was closed rather than let later answers reach the wrong commands. Reconnect; if it happens again, report it with the statement that caused it`,
    );
  }
}

/** The column count that starts a result set; null when the packet cannot be one. */
function columnCount(head: Buffer): number | null {
  const first = head.length > 0 ? head[0]! : -1;
  let count: number;
  if (first > 0 && first < 0xfb) count = first;
  else if (first === 0xfc && head.length >= 3) count = head.readUInt16LE(1);
  else if (first === 0xfd && head.length >= 4) count = head.readUIntLE(1, 3);
  else return null;
  return count > 0 ? count : null;
}

function safeOk(head: Buffer): ReturnType<typeof decodeOk> | null {
  try {
    return decodeOk(head);
  } catch {
    return null;
  }
}

/** A packet cut at the head's length, or malformed, tells nothing: the database is then unchanged. */
function safeSchemaChange(head: Buffer): string | undefined {
  try {
    return sessionSchemaChange(head);
  } catch {
    return undefined;
  }
}

function safeErr(head: Buffer): ErrPacket {
  try {
    return decodeErr(head);
  } catch {
    return { code: 0, sqlState: 'HY000', message: 'malformed error packet from upstream' };
  }
}

function eofStatus(head: Buffer): number {
  return head.length >= 5 ? head.readUInt16LE(3) : 0;
}
