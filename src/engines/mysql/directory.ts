/**
 * The live sessions of one listener, by the connection id meshgate gave the client in its
 * greeting and by the upstream connection's id. KILL needs both: clients name the first,
 * MariaDB knows only the second.
 */
import { mgError, type MeshgateError } from '../../errors/index.ts';
import type { ClientCommand } from './codec/commands.ts';
import { Command } from './codec/constants.ts';
import { encodeMessage, type Frame } from './codec/framer.ts';
import { decodeProcessKill, encodeProcessKill } from './codec/process-kill.ts';
import { parseKillStatement, replaceKillId } from './sql/index.ts';

/**
 * Connection ids meshgate gives clients in its greeting, before any upstream exists, come
 * from a range of their own: MariaDB's thread ids count up from 1 and do not reach it in
 * practice. So a number names one session whichever of its two ids the client uses — the
 * greeting's (drivers' KILL QUERY on a timeout) or CONNECTION_ID(), which is MariaDB's —
 * and never, by coincidence, the other id of another session. Below 2^31: some clients
 * keep the id in a signed 32-bit integer.
 */
export const CLIENT_CONNECTION_ID_BASE = 0x70000000;
const CLIENT_CONNECTION_ID_SPAN = 0x0fffffff;
let clientConnectionIds = 0;

export function nextClientConnectionId(): number {
  clientConnectionIds = (clientConnectionIds % CLIENT_CONNECTION_ID_SPAN) + 1;
  return CLIENT_CONNECTION_ID_BASE + clientConnectionIds;
}

export interface DirectoryEntry {
  /** Whose session it is: KILL reaches only sessions of the same identity. */
  readonly spiffeId: string;
  readonly upstreamConnectionId: number;
}

export type KillVerdict =
  /** Send MariaDB this id instead (the same one when the client already named MariaDB's). */
  | { readonly allow: true; readonly upstreamConnectionId: number }
  | { readonly allow: false; readonly reason: string };

export class SessionDirectory {
  private readonly byClientId = new Map<number, DirectoryEntry>();
  private readonly byUpstreamId = new Map<number, DirectoryEntry>();

  add(clientConnectionId: number, entry: DirectoryEntry): void {
    this.byClientId.set(clientConnectionId, entry);
    this.byUpstreamId.set(entry.upstreamConnectionId, entry);
  }

  remove(clientConnectionId: number): void {
    const entry = this.byClientId.get(clientConnectionId);
    if (entry === undefined) return;
    this.byClientId.delete(clientConnectionId);
    if (this.byUpstreamId.get(entry.upstreamConnectionId) === entry) this.byUpstreamId.delete(entry.upstreamConnectionId);
  }

  /**
   * What `KILL <id>` from `spiffeId` should reach: the session whose greeting id or whose
   * MariaDB thread it is (the ranges do not overlap). All sessions of a role share one
   * MariaDB account, so MariaDB alone would let one identity kill another's sessions;
   * meshgate refuses that for the sessions it knows. Ids it does not know go as written and
   * MariaDB's own ownership rules apply.
   */
  resolveKill(id: number, spiffeId: string): KillVerdict {
    const entry = id >= CLIENT_CONNECTION_ID_BASE ? this.byClientId.get(id) : this.byUpstreamId.get(id);
    if (entry === undefined) return { allow: true, upstreamConnectionId: id };
    if (entry.spiffeId !== spiffeId) {
      return { allow: false, reason: `connection ${id} belongs to another identity; a workload can kill only its own connections` };
    }
    return { allow: true, upstreamConnectionId: entry.upstreamConnectionId };
  }
}

/**
 * A KILL statement or COM_PROCESS_KILL as MariaDB must get it: naming the upstream
 * connection where the client named meshgate's id (the one in the greeting). Other
 * commands come back as they are. `text` is the rewritten statement, for tagging; the
 * audit keeps the statement as the client wrote it.
 */
export function translateKill(
  frame: Frame,
  command: Extract<ClientCommand, { kind: 'relay' }>,
  directory: SessionDirectory,
  spiffeId: string,
): { readonly frame: Frame; readonly text: string | null } | { readonly refusal: MeshgateError } {
  const unchanged = { frame, text: null };
  if (command.code !== Command.QUERY && command.code !== Command.PROCESS_KILL) return unchanged;
  const statement = command.code === Command.QUERY && command.text !== null ? parseKillStatement(command.text) : null;
  if (command.code === Command.QUERY && statement === null) return unchanged;
  const id = statement?.id ?? decodeProcessKill(frame.payload);
  const verdict = directory.resolveKill(id, spiffeId);
  if (!verdict.allow) return { refusal: mgError('MG_POLICY_DENIED', verdict.reason) };
  if (verdict.upstreamConnectionId === id) return unchanged;
  const upstreamId = verdict.upstreamConnectionId;
  const payload = statement === null ? encodeProcessKill(upstreamId) : replaceKillId(frame.payload, command.text!, statement, upstreamId);
  if (payload === null) {
    return { refusal: mgError('MG_COMMAND_FORBIDDEN', `KILL ${id} cannot be translated to the upstream connection id: write the statement in plain ASCII`) };
  }
  const text = statement === null ? null : command.text!.slice(0, statement.start) + String(upstreamId) + command.text!.slice(statement.end);
  return { frame: { seq: frame.seq, lastSeq: frame.seq, payload, raw: encodeMessage(payload, frame.seq) }, text };
}
