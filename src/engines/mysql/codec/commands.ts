/**
 * Command phase: what a client asks for, and what shape of answer the server gives.
 * https://mariadb.com/kb/en/2-text-protocol/  https://mariadb.com/kb/en/3-binary-protocol-prepared-statements/
 */
import { mgError } from '../../../errors/index.ts';
import { Command, CURSOR_TYPE_READ_ONLY } from './constants.ts';

/** How the server's answer to a command is framed; the response tracker follows it. */
export type ResponseShape =
  /** no answer at all (COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA, COM_QUIT) */
  | 'none'
  /** exactly one packet, whatever it holds (OK, ERR, EOF, or COM_STATISTICS' text) */
  | 'single'
  /** OK, ERR, LOCAL INFILE request, or result set(s), possibly several (MORE_RESULTS) */
  | 'result'
  /**
   * a COM_STMT_EXECUTE that asked for a cursor: metadata only when the server opened one
   * (CURSOR_EXISTS), metadata ended by an ERR when opening it failed, otherwise (CALL,
   * INSERT) whole binary result sets or OK as for 'result'
   */
  | 'cursor'
  /** COM_STMT_PREPARE_OK followed by parameter and column definitions */
  | 'prepare'
  /** column definitions ended by EOF (COM_FIELD_LIST) */
  | 'fields'
  /** binary rows ended by EOF, or an error (COM_STMT_FETCH) */
  | 'rows';

interface CommandSpec {
  readonly name: string;
  readonly response: ResponseShape;
}

/**
 * The commands meshgate relays. Anything absent — replication (binlog dump, register slave:
 * a stream meshgate cannot follow or audit), shutdown, and long-obsolete commands — is
 * refused before it reaches MariaDB. COM_CHANGE_USER is relayed as the session reset it
 * amounts to (the command stages say how): it cannot change who the session is. Commands
 * whose right to run MariaDB's grants already decide for the session's role (COM_REFRESH
 * needs RELOAD, as FLUSH does) pass: refusing them widens nothing and only breaks tools.
 */
const RELAYED: ReadonlyMap<number, CommandSpec> = new Map([
  [Command.QUERY, { name: 'query', response: 'result' }],
  [Command.INIT_DB, { name: 'init_db', response: 'single' }],
  [Command.PING, { name: 'ping', response: 'single' }],
  [Command.RESET_CONNECTION, { name: 'reset_connection', response: 'single' }],
  [Command.STMT_PREPARE, { name: 'prepare', response: 'prepare' }],
  [Command.STMT_EXECUTE, { name: 'execute', response: 'result' }],
  [Command.STMT_BULK_EXECUTE, { name: 'bulk_execute', response: 'result' }],
  [Command.STMT_SEND_LONG_DATA, { name: 'send_long_data', response: 'none' }],
  [Command.STMT_CLOSE, { name: 'stmt_close', response: 'none' }],
  [Command.STMT_RESET, { name: 'stmt_reset', response: 'single' }],
  [Command.STMT_FETCH, { name: 'fetch', response: 'rows' }],
  [Command.SET_OPTION, { name: 'set_option', response: 'single' }],
  [Command.STATISTICS, { name: 'statistics', response: 'single' }],
  [Command.PROCESS_KILL, { name: 'process_kill', response: 'single' }],
  [Command.FIELD_LIST, { name: 'field_list', response: 'fields' }],
  [Command.DEBUG, { name: 'debug', response: 'single' }],
  [Command.REFRESH, { name: 'refresh', response: 'single' }],
  [Command.CHANGE_USER, { name: 'change_user', response: 'single' }],
]);

const FORBIDDEN_NAMES: ReadonlyMap<number, string> = new Map([
  [Command.BINLOG_DUMP, 'COM_BINLOG_DUMP'],
  [Command.BINLOG_DUMP_GTID, 'COM_BINLOG_DUMP_GTID'],
  [Command.REGISTER_SLAVE, 'COM_REGISTER_SLAVE'],
  [Command.TABLE_DUMP, 'COM_TABLE_DUMP'],
  [Command.SHUTDOWN, 'COM_SHUTDOWN'],
  [Command.CREATE_DB, 'COM_CREATE_DB'],
  [Command.DROP_DB, 'COM_DROP_DB'],
  [Command.PROCESS_INFO, 'COM_PROCESS_INFO'],
  [Command.CONNECT_OUT, 'COM_CONNECT_OUT'],
  [Command.DAEMON, 'COM_DAEMON'],
]);

export type ClientCommand =
  | { readonly kind: 'quit' }
  | { readonly kind: 'forbidden'; readonly code: number; readonly name: string }
  | {
      readonly kind: 'relay';
      readonly code: number;
      readonly name: string;
      readonly response: ResponseShape;
      /** SQL of COM_QUERY / COM_STMT_PREPARE, database of COM_INIT_DB, table of COM_FIELD_LIST. */
      readonly text: string | null;
      /** Statement id of the COM_STMT_* commands. */
      readonly statementId: number | null;
    };

/** Statement text beyond this is not decoded for audit (the bytes still go upstream whole). */
export const MAX_DECODED_TEXT_BYTES = 64 * 1024;

export function decodeCommand(payload: Buffer): ClientCommand {
  if (payload.length === 0) {
    throw mgError('MG_PACKET_MALFORMED', 'empty command packet; use a standard MySQL/MariaDB client');
  }
  const code = payload[0]!;
  if (code === Command.QUIT) return { kind: 'quit' };
  const spec = RELAYED.get(code);
  if (spec === undefined) {
    const name = FORBIDDEN_NAMES.get(code) ?? `command 0x${code.toString(16).padStart(2, '0')}`;
    return { kind: 'forbidden', code, name };
  }
  let text: string | null = null;
  let statementId: number | null = null;
  let response = spec.response;
  switch (code) {
    case Command.QUERY:
    case Command.STMT_PREPARE:
    case Command.INIT_DB:
      text = payload.toString('utf8', 1, Math.min(payload.length, 1 + MAX_DECODED_TEXT_BYTES));
      break;
    case Command.FIELD_LIST: {
      const end = payload.indexOf(0, 1);
      text = payload.toString('utf8', 1, end < 0 ? payload.length : end);
      break;
    }
    case Command.STMT_EXECUTE:
    case Command.STMT_BULK_EXECUTE:
    case Command.STMT_SEND_LONG_DATA:
    case Command.STMT_CLOSE:
    case Command.STMT_RESET:
    case Command.STMT_FETCH:
      if (payload.length < 5) {
        throw mgError('MG_PACKET_MALFORMED', `malformed ${spec.name} command: no statement id`);
      }
      statementId = payload.readUInt32LE(1);
      if (code === Command.STMT_EXECUTE && payload.length > 5 && payload[5]! & CURSOR_TYPE_READ_ONLY) response = 'cursor';
      break;
  }
  return { kind: 'relay', code, name: spec.name, response, text, statementId };
}
