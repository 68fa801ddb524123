/**
 * Google's parsers and protobufjs disagree on some messages. Where they do, meshgate
 * would authorize one reading while Firestore acts on another. Three disagreements matter:
 *  - a known field with the wrong wire type: Google skips it as unknown, protobufjs reads it;
 *  - a singular message field sent twice: Google merges both, protobufjs keeps the last;
 *  - two members of a oneof: Google keeps the last on the wire, meshgate's code might look
 *    at another.
 * The official SDKs never send any of these. So before decoding, meshgate walks the bytes
 * against the trimmed schema and refuses the message outright when one of them appears:
 * what it authorizes is then exactly what Firestore will read.
 */
import protobuf from 'protobufjs';
import { isMeshgateError, mgError, type MeshgateError } from '../../../errors/index.ts';

const MAX_DEPTH = 32;

const WIRE = { VARINT: 0, FIXED64: 1, BYTES: 2, START_GROUP: 3, END_GROUP: 4, FIXED32: 5 } as const;

function expectedWireType(field: protobuf.Field): number {
  if (field.resolvedType instanceof protobuf.Type) return WIRE.BYTES;
  switch (field.type) {
    case 'string':
    case 'bytes':
      return WIRE.BYTES;
    case 'double':
    case 'fixed64':
    case 'sfixed64':
      return WIRE.FIXED64;
    case 'float':
    case 'fixed32':
    case 'sfixed32':
      return WIRE.FIXED32;
    default:
      return WIRE.VARINT; // int32, int64, uint*, sint*, bool, enums
  }
}

function refuse(problem: string): MeshgateError {
  return mgError('MG_PACKET_MALFORMED', `the request ${problem}; meshgate refuses messages Firestore could read differently from the way meshgate authorizes them`);
}

/** Throws MG_PACKET_MALFORMED when `bytes` is not a message every parser reads the same way. */
export function checkUnambiguous(type: protobuf.Type, bytes: Uint8Array): void {
  try {
    walk(type, bytes, 0);
  } catch (error) {
    if (isMeshgateError(error)) throw error;
    // protobufjs's reader throws (RangeError, or Error for wire types 6 and 7) when a field
    // runs past the end or is not protobuf at all.
    throw mgError('MG_PACKET_MALFORMED', `the request is not a valid google.firestore.v1.${type.name} message (${(error as Error).message}); send what the Firestore client libraries send`);
  }
}

function walk(type: protobuf.Type, bytes: Uint8Array, depth: number): void {
  if (depth > MAX_DEPTH) throw refuse(`nests messages deeper than ${MAX_DEPTH}`);
  const reader = protobuf.Reader.create(bytes);
  const seen = new Set<number>();
  const oneofSeen = new Map<string, number>();
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const id = tag >>> 3;
    const wire = tag & 7;
    if (id === 0) throw refuse('has a field numbered 0');
    const field = type.fieldsById[id];
    if (field === undefined) {
      if (wire === WIRE.START_GROUP || wire === WIRE.END_GROUP) throw refuse(`uses a group (field ${id}), which Firestore's messages never do`);
      reader.skipType(wire);
      continue;
    }
    field.resolve();
    const expected = expectedWireType(field);
    if (wire !== expected) throw refuse(`sends field ${type.name}.${field.name} with wire type ${wire} instead of ${expected}`);
    if (!field.repeated) {
      if (seen.has(id)) throw refuse(`sends ${type.name}.${field.name} more than once`);
      seen.add(id);
    }
    const oneof = field.partOf;
    if (oneof !== null) {
      const other = oneofSeen.get(oneof.name);
      if (other !== undefined && other !== id) throw refuse(`sets two members of ${type.name}.${oneof.name} (${type.fieldsById[other]!.name} and ${field.name})`);
      oneofSeen.set(oneof.name, id);
    }
    if (wire === WIRE.BYTES) {
      const length = reader.uint32();
      const start = reader.pos;
      if (start + length > reader.len) throw refuse(`is cut off inside ${type.name}.${field.name}`);
      if (field.resolvedType instanceof protobuf.Type) walk(field.resolvedType, bytes.subarray(start, start + length), depth + 1);
      reader.pos = start + length;
    } else {
      reader.skipType(wire);
    }
  }
}
