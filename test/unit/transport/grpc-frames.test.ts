/**
 * GrpcMessageReader: gRPC length-prefixed messages out of HTTP/2 DATA chunks, however the
 * chunks are cut; a bad flag byte or an oversized length refused from the prefix alone.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isMeshgateError, type ErrorCode } from '../../../src/errors/index.ts';
import { encodeGrpcMessage, GRPC_PREFIX_BYTES, GrpcMessageReader, type GrpcMessage } from '../../../src/transport/grpc/frames.ts';

const LIMIT = 1024;

function prefix(flag: number, length: number): Buffer {
  const out = Buffer.alloc(GRPC_PREFIX_BYTES);
  out[0] = flag;
  out.writeUInt32BE(length, 1);
  return out;
}

function frame(payload: Buffer, flag = 0): Buffer {
  return Buffer.concat([prefix(flag, payload.length), payload]);
}

/** What a message is, as plain data, for deepEqual. */
function plain(messages: readonly GrpcMessage[]): { compressed: boolean; payload: string; raw: string }[] {
  return messages.map((m) => ({ compressed: m.compressed, payload: m.payload.toString('hex'), raw: m.raw.toString('hex') }));
}

function pushAll(reader: GrpcMessageReader, chunks: readonly Buffer[]): GrpcMessage[] {
  return chunks.flatMap((chunk) => reader.push(chunk));
}

function throwsCode(fn: () => unknown, code: ErrorCode, message?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(isMeshgateError(error), `expected a MeshgateError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  });
}

const PAYLOADS = [Buffer.from('first'), Buffer.alloc(0), Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), Buffer.from('x'.repeat(300))];
const STREAM = Buffer.concat([frame(PAYLOADS[0]!), frame(PAYLOADS[1]!), frame(PAYLOADS[2]!, 1), frame(PAYLOADS[3]!)]);
const EXPECTED = [
  { compressed: false, payload: PAYLOADS[0]!.toString('hex'), raw: frame(PAYLOADS[0]!).toString('hex') },
  { compressed: false, payload: '', raw: frame(PAYLOADS[1]!).toString('hex') },
  { compressed: true, payload: PAYLOADS[2]!.toString('hex'), raw: frame(PAYLOADS[2]!, 1).toString('hex') },
  { compressed: false, payload: PAYLOADS[3]!.toString('hex'), raw: frame(PAYLOADS[3]!).toString('hex') },
];

describe('GrpcMessageReader', () => {
  test('several messages in one chunk: all of them, in order, with the flag and the raw bytes to forward', () => {
    const reader = new GrpcMessageReader(LIMIT);
    assert.deepEqual(plain(reader.push(STREAM)), EXPECTED);
    assert.equal(reader.buffered, 0);
  });

  test('encodeGrpcMessage writes the uncompressed prefix the reader reads back', () => {
    const payload = Buffer.from('hello');
    assert.deepEqual(encodeGrpcMessage(payload), frame(payload));
    const [message] = new GrpcMessageReader(LIMIT).push(encodeGrpcMessage(payload));
    assert.deepEqual(message?.payload, payload);
  });

  test('split at every byte boundary: the same messages, nothing lost or duplicated', () => {
    for (let cut = 0; cut <= STREAM.length; cut++) {
      const reader = new GrpcMessageReader(LIMIT);
      const got = pushAll(reader, [STREAM.subarray(0, cut), STREAM.subarray(cut)]);
      assert.deepEqual(plain(got), EXPECTED, `cut at ${cut}`);
      assert.equal(reader.buffered, 0, `cut at ${cut}`);
    }
  });

  test('every pair of cut points (three chunks), and one byte at a time', () => {
    for (let a = 0; a <= STREAM.length; a += 3) {
      for (let b = a; b <= STREAM.length; b += 7) {
        const got = pushAll(new GrpcMessageReader(LIMIT), [STREAM.subarray(0, a), STREAM.subarray(a, b), STREAM.subarray(b)]);
        assert.deepEqual(plain(got), EXPECTED, `cuts at ${a}, ${b}`);
      }
    }
    const reader = new GrpcMessageReader(LIMIT);
    const bytes = [...STREAM].map((byte) => Buffer.from([byte]));
    assert.deepEqual(plain(pushAll(reader, bytes)), EXPECTED);
  });

  test('an incomplete message is held back and counted in `buffered` until the rest arrives', () => {
    const reader = new GrpcMessageReader(LIMIT);
    const whole = frame(Buffer.from('abcdef'));
    assert.deepEqual(reader.push(whole.subarray(0, 3)), []);
    assert.equal(reader.buffered, 3);
    assert.deepEqual(reader.push(whole.subarray(3, 8)), []);
    assert.equal(reader.buffered, 8);
    assert.equal(reader.push(whole.subarray(8))[0]?.payload.toString(), 'abcdef');
    assert.equal(reader.buffered, 0);
  });

  test('an empty chunk yields nothing and changes nothing', () => {
    const reader = new GrpcMessageReader(LIMIT);
    assert.deepEqual(reader.push(Buffer.alloc(0)), []);
    reader.push(STREAM.subarray(0, 4));
    assert.deepEqual(reader.push(Buffer.alloc(0)), []);
    assert.equal(reader.buffered, 4);
  });

  test('a message exactly at the limit passes; one byte more is refused', () => {
    const atLimit = frame(Buffer.alloc(LIMIT, 1));
    assert.equal(new GrpcMessageReader(LIMIT).push(atLimit)[0]?.payload.length, LIMIT);
    throwsCode(() => new GrpcMessageReader(LIMIT).push(frame(Buffer.alloc(LIMIT + 1))), 'MG_PACKET_TOO_LARGE', /1025 bytes is larger than meshgate accepts \(1024\)/);
  });

  test('an oversized length is refused from the 5-byte prefix alone, before any of the body is buffered', () => {
    const reader = new GrpcMessageReader(LIMIT);
    throwsCode(() => reader.push(prefix(0, 0xffffffff)), 'MG_PACKET_TOO_LARGE', /4294967295 bytes/);
    // The prefix arriving in pieces: refused the moment its last byte is in.
    const split = new GrpcMessageReader(LIMIT);
    const head = prefix(0, LIMIT + 1);
    assert.deepEqual(split.push(head.subarray(0, 2)), []);
    assert.deepEqual(split.push(head.subarray(2, 4)), []);
    throwsCode(() => split.push(head.subarray(4)), 'MG_PACKET_TOO_LARGE');
    // After a valid message in the same chunk: refused too (the valid one is not half-returned).
    throwsCode(() => new GrpcMessageReader(LIMIT).push(Buffer.concat([frame(Buffer.from('ok')), prefix(0, 10 * LIMIT)])), 'MG_PACKET_TOO_LARGE');
  });

  test('a flag byte other than 0 or 1 is refused as malformed', () => {
    for (const flag of [2, 3, 0x7f, 0x80, 0xff]) {
      throwsCode(() => new GrpcMessageReader(LIMIT).push(frame(Buffer.from('abc'), flag)), 'MG_PACKET_MALFORMED', new RegExp(`flag byte 0x${flag.toString(16)}`));
    }
    // Detected from the first byte of the prefix only once the prefix is complete, wherever it falls.
    const reader = new GrpcMessageReader(LIMIT);
    reader.push(frame(Buffer.from('ok')).subarray(0, 3));
    throwsCode(() => reader.push(Buffer.concat([frame(Buffer.from('ok')).subarray(3), frame(Buffer.from('bad'), 9)])), 'MG_PACKET_MALFORMED');
  });

  test('the compressed flag is reported, not refused (the engine decides)', () => {
    const [message] = new GrpcMessageReader(LIMIT).push(frame(Buffer.from('zz'), 1));
    assert.equal(message?.compressed, true);
  });

  test(
    'a large message arriving in 16 KiB DATA chunks costs linear work, not a copy of everything buffered per chunk',
    () => {
      const size = 16 * 1024 * 1024;
      const message = frame(Buffer.alloc(size - GRPC_PREFIX_BYTES, 7));
      const reader = new GrpcMessageReader(size);
      const concat = Buffer.concat;
      let copied = 0;
      Buffer.concat = ((list: readonly Uint8Array[], totalLength?: number) => {
        const out = concat(list, totalLength);
        copied += out.length;
        return out;
      }) as typeof Buffer.concat;
      const started = performance.now();
      let got: GrpcMessage[] = [];
      try {
        for (let offset = 0; offset < message.length; offset += 16384) got = got.concat(reader.push(message.subarray(offset, offset + 16384)));
      } finally {
        Buffer.concat = concat;
      }
      const took = performance.now() - started;
      assert.equal(got.length, 1);
      assert.equal(got[0]!.payload.length, size - GRPC_PREFIX_BYTES);
      assert.ok(copied <= 2 * size, `copied ${(copied / 2 ** 30).toFixed(1)} GiB to assemble a 16 MiB message`);
      assert.ok(took < 400, `assembling a 16 MiB message took ${took.toFixed(0)} ms`);
    },
  );
});

describe('GrpcMessageReader properties', () => {
  const payloads = fc.array(fc.record({ payload: fc.uint8Array({ maxLength: 200 }), compressed: fc.boolean() }), { maxLength: 12 });

  /** Cut points (sorted, deduplicated) over a buffer of length n. */
  function chunked(data: Buffer, cuts: readonly number[]): Buffer[] {
    const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
    const out: Buffer[] = [];
    let last = 0;
    for (const point of [...points, data.length]) {
      out.push(data.subarray(last, point));
      last = point;
    }
    return out;
  }

  test('random chunking yields the same messages as one big push', () => {
    fc.assert(
      fc.property(payloads, fc.array(fc.nat(), { maxLength: 40 }), (messages, cuts) => {
        const data = Buffer.concat(messages.map((m) => frame(Buffer.from(m.payload), m.compressed ? 1 : 0)));
        const whole = plain(new GrpcMessageReader(LIMIT).push(data));
        const reader = new GrpcMessageReader(LIMIT);
        const pieces = plain(pushAll(reader, chunked(data, cuts)));
        assert.deepEqual(pieces, whole);
        assert.equal(whole.length, messages.length);
        assert.deepEqual(
          whole.map((m) => [m.payload, m.compressed]),
          messages.map((m) => [Buffer.from(m.payload).toString('hex'), m.compressed]),
        );
        assert.equal(reader.buffered, 0);
      }),
      { numRuns: 500 },
    );
  });

  test('random bytes: messages, or a MeshgateError (malformed / too large); never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 10 }), (bytes, cuts) => {
        const reader = new GrpcMessageReader(64);
        try {
          for (const chunk of chunked(Buffer.from(bytes), cuts)) reader.push(chunk);
        } catch (error) {
          assert.ok(isMeshgateError(error), String(error));
          assert.ok(error.code === 'MG_PACKET_MALFORMED' || error.code === 'MG_PACKET_TOO_LARGE', error.code);
        }
        assert.ok(reader.buffered <= bytes.length);
      }),
      { numRuns: 1000 },
    );
  });
});
