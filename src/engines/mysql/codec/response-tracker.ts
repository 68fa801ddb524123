/**
 * Follows the server's side of the command phase without buffering it: meshgate relays
 * upstream bytes to the client as they arrive and only looks at the first bytes of each
 * packet, to learn where each response ends and what it said (rows, affected rows,
 * errors, prepared statement ids, LOCAL INFILE requests).
 * https://mariadb.com/kb/en/result-set-packets/  https://mariadb.com/kb/en/com_stmt_prepare/
 */
import { Header, MAX_PACKET_PAYLOAD, ServerStatus } from './constants.ts';
import type { ResponseShape } from './commands.ts';
import { decodeErr, decodeOk, sessionSchemaChange, type ErrPacket } from './generic.ts';
import { HEADER_BYTES } from './framer.ts';
import { PayloadReader } from './wire.ts';

/** Enough of a packet to read any OK/EOF/ERR/PREPARE_OK header and a useful error message. */
const HEAD_BYTES = 512;

export interface ResponseOutcome {
  readonly rowsReturned: number;
  readonly rowsAffected: number;
  readonly error: ErrPacket | null;
  /** Statement id from COM_STMT_PREPARE_OK. */
  readonly statementId: number | null;
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
  /** A packet arrived while no response was expected (e.g. the server killing the connection). */
  onUnsolicited(head: Buffer): void;
}

type Phase = 'first' | 'columns' | 'columnsEof' | 'rows' | 'prepareParams' | 'prepareParamsEof' | 'prepareColumns' | 'prepareColumnsEof' | 'fields';

interface Pending {
  shape: ResponseShape;
  phase: Phase;
  /** Definitions still to come in the current metadata block. */
  left: number;
  preparedColumns: number;
  rowsReturned: number;
  rowsAffected: number;
  error: ErrPacket | null;
  statementId: number | null;
  status: number;
  schema: string | undefined;
}

export class ResponseTracker {
  private readonly queue: Pending[] = [];
  private header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  private packetLength = 0;
  private packetLeft = 0;
  /** Head bytes gathered for a packet split across chunks. */
  private headParts: Buffer[] = [];
  private headFill = 0;
  private headWanted = 0;
  /** The current physical packet continues a logical one: its bytes are payload, not a header. */
  private continuation = false;

  constructor(
    private readonly deprecateEof: boolean,
    private readonly handler: ResponseHandler,
  ) {}

  get pendingResponses(): number {
    return this.queue.length;
  }

  /** Nothing expected and no packet half-read: the connection is between commands. */
  get idle(): boolean {
    return this.queue.length === 0 && this.headerFill === 0 && !this.continuation;
  }

  expect(shape: ResponseShape): void {
    if (shape === 'none') return;
    this.queue.push({
      shape,
      phase: shape === 'rows' ? 'rows' : shape === 'fields' ? 'fields' : 'first',
      left: 0,
      preparedColumns: 0,
      rowsReturned: 0,
      rowsAffected: 0,
      error: null,
      statementId: null,
      status: 0,
      schema: undefined,
    });
  }

  scan(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.headerFill < HEADER_BYTES) {
        const take = Math.min(HEADER_BYTES - this.headerFill, chunk.length - offset);
        if (this.headerFill === 0 && take === HEADER_BYTES) {
          this.packetLength = chunk[offset]! | (chunk[offset + 1]! << 8) | (chunk[offset + 2]! << 16);
        } else {
          chunk.copy(this.header, this.headerFill, offset, offset + take);
          if (this.headerFill + take < HEADER_BYTES) {
            this.headerFill += take;
            return;
          }
          this.packetLength = this.header[0]! | (this.header[1]! << 8) | (this.header[2]! << 16);
        }
        offset += take;
        this.headerFill = HEADER_BYTES;
        this.packetLeft = this.packetLength;
        this.headWanted = this.continuation ? 0 : Math.min(this.packetLength, HEAD_BYTES);
        this.headFill = 0;
        if (this.headWanted === 0 && !this.continuation) this.onPacketHead(Buffer.alloc(0));
      }
      if (this.headFill < this.headWanted) {
        const take = Math.min(this.headWanted - this.headFill, chunk.length - offset);
        if (this.headFill === 0 && take === this.headWanted) {
          this.headFill = take;
          this.onPacketHead(chunk.subarray(offset, offset + take));
        } else {
          this.headParts.push(Buffer.from(chunk.subarray(offset, offset + take)));
          this.headFill += take;
          if (this.headFill === this.headWanted) {
            const head = Buffer.concat(this.headParts, this.headFill);
            this.headParts = [];
            this.onPacketHead(head);
          }
        }
        offset += take;
        this.packetLeft -= take;
      }
      const skip = Math.min(this.packetLeft, chunk.length - offset);
      offset += skip;
      this.packetLeft -= skip;
      if (this.packetLeft === 0 && this.headFill === this.headWanted) {
        this.continuation = this.packetLength === MAX_PACKET_PAYLOAD;
        this.headerFill = 0;
      }
    }
  }

  private onPacketHead(head: Buffer): void {
    const pending = this.queue[0];
    if (pending === undefined) {
      this.handler.onUnsolicited(head);
      return;
    }
    const first = head.length > 0 ? head[0]! : -1;
    switch (pending.phase) {
      case 'first':
        return this.onFirst(pending, head, first);
      case 'columns':
        if (--pending.left === 0) this.afterColumns(pending);
        return;
      case 'columnsEof':
        // With a cursor open the rows wait for COM_STMT_FETCH; a statement the server runs
        // without one (CALL) sends them now, like any result set.
        if (pending.shape === 'cursor' && eofStatus(head) & ServerStatus.CURSOR_EXISTS) {
          pending.status = eofStatus(head);
          return this.complete();
        }
        pending.phase = 'rows';
        return;
      case 'rows':
        if (first === Header.ERR) return this.fail(pending, head);
        if (first === Header.EOF && this.isTerminator()) return this.finishResultSet(pending, head);
        pending.rowsReturned++;
        return;
      case 'prepareParams':
        if (--pending.left === 0) this.afterPrepareParams(pending);
        return;
      case 'prepareParamsEof':
        return this.startPrepareColumns(pending);
      case 'prepareColumns':
        if (--pending.left === 0) {
          if (this.deprecateEof) this.complete();
          else pending.phase = 'prepareColumnsEof';
        }
        return;
      case 'prepareColumnsEof':
        return this.complete();
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
      const r = new PayloadReader(head, 'COM_STMT_PREPARE response');
      r.skip(1);
      pending.statementId = r.u32();
      pending.preparedColumns = r.u16();
      pending.left = r.u16();
      if (pending.left > 0) pending.phase = 'prepareParams';
      else this.startPrepareColumns(pending);
      return;
    }
    if (first === Header.OK) {
      const ok = safeOk(head);
      pending.rowsAffected += ok?.affectedRows ?? 0;
      pending.status = ok?.status ?? 0;
      if (pending.status & ServerStatus.SESSION_STATE_CHANGED) pending.schema = safeSchemaChange(head) ?? pending.schema;
      if (!(pending.status & ServerStatus.MORE_RESULTS_EXISTS)) this.complete();
      return;
    }
    if (first === Header.LOCAL_INFILE) {
      this.handler.onLocalInfileRequest(head.toString('utf8', 1));
      return;
    }
    const columns = new PayloadReader(head, 'column count').lenenc();
    pending.left = columns;
    if (columns === 0) this.afterColumns(pending);
    else pending.phase = 'columns';
  }

  /**
   * Under DEPRECATE_EOF an open cursor still ends the metadata with a terminator (an OK in
   * EOF form, flagged CURSOR_EXISTS); the rows phase takes it as an empty result set's end.
   */
  private afterColumns(pending: Pending): void {
    pending.phase = this.deprecateEof ? 'rows' : 'columnsEof';
  }

  private afterPrepareParams(pending: Pending): void {
    if (this.deprecateEof) this.startPrepareColumns(pending);
    else pending.phase = 'prepareParamsEof';
  }

  private startPrepareColumns(pending: Pending): void {
    pending.left = pending.preparedColumns;
    if (pending.left > 0) pending.phase = 'prepareColumns';
    else this.complete();
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
      status: done.status,
      schema: done.schema,
    });
  }
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
