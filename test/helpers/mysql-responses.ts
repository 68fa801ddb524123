/**
 * Server answers built packet by packet, as MariaDB frames them with or without
 * CLIENT_DEPRECATE_EOF, and a response tracker that records what it made of them: for the
 * tracker's unit and property tests.
 */
import { ServerStatus } from '../../src/engines/mysql/codec/constants.ts';
import type { ResponseShape } from '../../src/engines/mysql/codec/commands.ts';
import { encodeMessage } from '../../src/engines/mysql/codec/framer.ts';
import { encodeEof, encodeOk } from '../../src/engines/mysql/codec/generic.ts';
import { ResponseTracker, type ResponseOutcome } from '../../src/engines/mysql/codec/response-tracker.ts';
import { PayloadWriter } from '../../src/engines/mysql/codec/wire.ts';

export const column = (name: string) => new PayloadWriter().lenencBytes('def').lenencBytes('db').lenencBytes('t').lenencBytes('t').lenencBytes(name).lenencBytes(name).lenenc(12).u16(45).u32(11).u8(3).u16(0).u8(0).u16(0).toBuffer();
export const textRow = (...values: string[]) => values.reduce((w, v) => w.lenencBytes(v), new PayloadWriter()).toBuffer();

/** The end of rows: an EOF, or under DEPRECATE_EOF an OK packet with the EOF header. */
export function terminator(deprecateEof: boolean, status: number): Buffer {
  if (!deprecateEof) return encodeEof({ status });
  const ok = encodeOk({ status });
  ok[0] = 0xfe;
  return ok;
}

/** A text result set. */
export function resultSet(columns: string[], rows: string[][], deprecateEof: boolean, status: number = ServerStatus.AUTOCOMMIT): Buffer[] {
  const packets = [new PayloadWriter().lenenc(columns.length).toBuffer(), ...columns.map(column)];
  if (!deprecateEof) packets.push(encodeEof({ status }));
  for (const row of rows) packets.push(textRow(...row));
  packets.push(terminator(deprecateEof, status));
  return packets;
}

/** One message's packets, sequence ids from 1 (the command was 0). */
export function wire(packets: Buffer[]): Buffer {
  return Buffer.concat(packets.map((p, i) => encodeMessage(p, (i + 1) & 0xff)));
}

export interface Recorded {
  outcomes: ResponseOutcome[];
  infiles: string[];
  unsolicited: number;
}

/** Feeds `chunks` to a tracker expecting `shapes` (commands named `a <shape> command`). */
export function track(deprecateEof: boolean, shapes: readonly ResponseShape[], chunks: readonly Buffer[]): Recorded {
  const recorded: Recorded = { outcomes: [], infiles: [], unsolicited: 0 };
  const tracker = new ResponseTracker(deprecateEof, {
    onResponse: (o) => recorded.outcomes.push(o),
    onLocalInfileRequest: (f) => recorded.infiles.push(f),
    onUnsolicited: () => recorded.unsolicited++,
  });
  for (const shape of shapes) tracker.expect(shape, `a ${shape} command`);
  for (const chunk of chunks) tracker.scan(chunk);
  return recorded;
}
