/**
 * COM_PROCESS_KILL: the command byte and a 4-byte connection id.
 * https://mariadb.com/kb/en/com_process_kill/
 */
import { mgError } from '../../../errors/index.ts';
import { Command } from './constants.ts';

/** The connection id of a COM_PROCESS_KILL payload. */
export function decodeProcessKill(payload: Buffer): number {
  if (payload.length < 5 || payload[0] !== Command.PROCESS_KILL) {
    throw mgError('MG_PACKET_MALFORMED', 'malformed process_kill command: no connection id');
  }
  return payload.readUInt32LE(1);
}

export function encodeProcessKill(id: number): Buffer {
  const out = Buffer.allocUnsafe(5);
  out[0] = Command.PROCESS_KILL;
  out.writeUInt32LE(id >>> 0, 1);
  return out;
}
