/**
 * MySQL/MariaDB protocol constants.
 * https://mariadb.com/kb/en/connection/#capabilities
 * https://dev.mysql.com/doc/dev/mysql-server/latest/group__group__cs__capabilities__flags.html
 */

/** The lower 32 capability bits (the classic MySQL ones). */
export const Capability = {
  CLIENT_MYSQL: 1 << 0,
  FOUND_ROWS: 1 << 1,
  LONG_FLAG: 1 << 2,
  CONNECT_WITH_DB: 1 << 3,
  NO_SCHEMA: 1 << 4,
  COMPRESS: 1 << 5,
  ODBC: 1 << 6,
  LOCAL_FILES: 1 << 7,
  IGNORE_SPACE: 1 << 8,
  PROTOCOL_41: 1 << 9,
  INTERACTIVE: 1 << 10,
  SSL: 1 << 11,
  IGNORE_SIGPIPE: 1 << 12,
  TRANSACTIONS: 1 << 13,
  RESERVED: 1 << 14,
  SECURE_CONNECTION: 1 << 15,
  MULTI_STATEMENTS: 1 << 16,
  MULTI_RESULTS: 1 << 17,
  PS_MULTI_RESULTS: 1 << 18,
  PLUGIN_AUTH: 1 << 19,
  CONNECT_ATTRS: 1 << 20,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 1 << 21,
  CAN_HANDLE_EXPIRED_PASSWORDS: 1 << 22,
  SESSION_TRACK: 1 << 23,
  DEPRECATE_EOF: 1 << 24,
  SSL_VERIFY_SERVER_CERT: 1 << 30,
  REMEMBER_OPTIONS: 1 << 31,
} as const;

/** MariaDB's extended capabilities, bits 32..63 (sent in the handshake's filler). */
export const MariadbCapability = {
  PROGRESS: 1 << 0,
  COM_MULTI: 1 << 1,
  STMT_BULK_OPERATIONS: 1 << 2,
  EXTENDED_METADATA: 1 << 3,
  CACHE_METADATA: 1 << 4,
} as const;

/**
 * What meshgate can relay without rewriting results. Compression would hide packet
 * boundaries from the relay; progress reports and metadata caching change result framing
 * and are not worth the complexity on the hot path. SSL is meshgate's own (client side).
 */
export const RELAYABLE_CAPABILITIES =
  (Capability.FOUND_ROWS |
    Capability.LONG_FLAG |
    Capability.CONNECT_WITH_DB |
    Capability.NO_SCHEMA |
    Capability.ODBC |
    Capability.LOCAL_FILES |
    Capability.IGNORE_SPACE |
    Capability.PROTOCOL_41 |
    Capability.INTERACTIVE |
    Capability.SSL |
    Capability.IGNORE_SIGPIPE |
    Capability.TRANSACTIONS |
    Capability.RESERVED |
    Capability.SECURE_CONNECTION |
    Capability.MULTI_STATEMENTS |
    Capability.MULTI_RESULTS |
    Capability.PS_MULTI_RESULTS |
    Capability.PLUGIN_AUTH |
    Capability.CONNECT_ATTRS |
    Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA |
    Capability.SESSION_TRACK |
    Capability.DEPRECATE_EOF |
    Capability.REMEMBER_OPTIONS) >>>
  0;

export const RELAYABLE_MARIADB_CAPABILITIES = MariadbCapability.STMT_BULK_OPERATIONS | MariadbCapability.EXTENDED_METADATA;

export const ServerStatus = {
  IN_TRANS: 0x0001,
  AUTOCOMMIT: 0x0002,
  MORE_RESULTS_EXISTS: 0x0008,
  CURSOR_EXISTS: 0x0040,
  LAST_ROW_SENT: 0x0080,
  SESSION_STATE_CHANGED: 0x4000,
} as const;

/** Entry types in an OK packet's session state information. */
export const SessionTrack = {
  SCHEMA: 0x01,
} as const;

export const Command = {
  SLEEP: 0x00,
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  FIELD_LIST: 0x04,
  CREATE_DB: 0x05,
  DROP_DB: 0x06,
  REFRESH: 0x07,
  SHUTDOWN: 0x08,
  STATISTICS: 0x09,
  PROCESS_INFO: 0x0a,
  CONNECT: 0x0b,
  PROCESS_KILL: 0x0c,
  DEBUG: 0x0d,
  PING: 0x0e,
  TIME: 0x0f,
  DELAYED_INSERT: 0x10,
  CHANGE_USER: 0x11,
  BINLOG_DUMP: 0x12,
  TABLE_DUMP: 0x13,
  CONNECT_OUT: 0x14,
  REGISTER_SLAVE: 0x15,
  STMT_PREPARE: 0x16,
  STMT_EXECUTE: 0x17,
  STMT_SEND_LONG_DATA: 0x18,
  STMT_CLOSE: 0x19,
  STMT_RESET: 0x1a,
  SET_OPTION: 0x1b,
  STMT_FETCH: 0x1c,
  DAEMON: 0x1d,
  BINLOG_DUMP_GTID: 0x1e,
  RESET_CONNECTION: 0x1f,
  STMT_BULK_EXECUTE: 0xfa,
} as const;

/** Packet header bytes that mark the generic responses. */
export const Header = {
  OK: 0x00,
  LOCAL_INFILE: 0xfb,
  EOF: 0xfe,
  ERR: 0xff,
} as const;

/** A payload of exactly this length continues in the next packet. */
export const MAX_PACKET_PAYLOAD = 0xffffff;

/** `COM_STMT_EXECUTE` statement id meaning "the statement prepared last" (MariaDB pipelining). */
export const LAST_PREPARED_STATEMENT_ID = 0xffffffff;

export const CURSOR_TYPE_READ_ONLY = 0x01;
