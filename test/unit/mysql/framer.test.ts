import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeMessage, HEADER_BYTES, PacketFramer, packetCount, type Frame } from '../../../src/engines/mysql/codec/framer.ts';
import { MAX_PACKET_PAYLOAD } from '../../../src/engines/mysql/codec/constants.ts';
import { isMeshgateError } from '../../../src/errors/index.ts';

describe('PacketFramer', () => {
  it('frames a COM_PING captured from a client', () => {
    const framer = new PacketFramer(1024);
    const [frame, ...rest] = framer.push(Buffer.from('010000000e', 'hex'));
    assert.equal(rest.length, 0);
    assert.equal(frame!.seq, 0);
    assert.deepEqual(frame!.payload, Buffer.from([0x0e]));
    assert.deepEqual(frame!.raw, Buffer.from('010000000e', 'hex'));
  });

  it('returns the same messages whatever offset the stream is split at', () => {
    const stream = Buffer.concat([
      encodeMessage(Buffer.from('\x03SELECT 1'), 0),
      encodeMessage(Buffer.alloc(0), 3),
      encodeMessage(Buffer.from('\x0e'), 0),
    ]);
    for (let split = 0; split <= stream.length; split++) {
      const framer = new PacketFramer(1024);
      const frames = [...framer.push(stream.subarray(0, split)), ...framer.push(stream.subarray(split))];
      assert.deepEqual(
        frames.map((f) => [f.seq, f.payload.toString('latin1')]),
        [
          [0, '\x03SELECT 1'],
          [3, ''],
          [0, '\x0e'],
        ],
        `split at ${split}`,
      );
      assert.equal(framer.buffered, 0);
    }
  });

  it('joins 16 MiB continuation packets into one message and keeps the raw bytes', () => {
    const payload = Buffer.alloc(MAX_PACKET_PAYLOAD + 10, 0x61);
    const wire = encodeMessage(payload, 5);
    assert.equal(packetCount(payload.length), 2);
    const framer = new PacketFramer(64 * 1024 * 1024);
    const frames = [...framer.push(wire.subarray(0, 1000)), ...framer.push(wire.subarray(1000))];
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.seq, 5);
    assert.equal(frames[0]!.lastSeq, 6);
    assert.equal(frames[0]!.payload.length, payload.length);
    assert.deepEqual(frames[0]!.raw, wire);
  });

  it('a payload of exactly 0xFFFFFF bytes ends with an empty packet', () => {
    const wire = encodeMessage(Buffer.alloc(MAX_PACKET_PAYLOAD, 1), 0);
    assert.equal(wire.length, MAX_PACKET_PAYLOAD + 8);
    assert.deepEqual(wire.subarray(wire.length - 4), Buffer.from([0, 0, 0, 1]));
  });

  it('refuses an oversized message from its header, before buffering the body', () => {
    const framer = new PacketFramer(100);
    const header = Buffer.from([0xe8, 0x03, 0x00, 0x00]); // says 1000 bytes follow
    assert.throws(
      () => framer.push(header),
      (error: unknown) => isMeshgateError(error) && error.code === 'MG_PACKET_TOO_LARGE',
    );
  });

  it('property: any sequence of messages survives any chunking', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
        (payloads, cuts) => {
          const wire = Buffer.concat(payloads.map((p, i) => encodeMessage(Buffer.from(p), i)));
          const framer = new PacketFramer(1024);
          const got: Buffer[] = [];
          let offset = 0;
          let c = 0;
          while (offset < wire.length) {
            const size = cuts[c++ % cuts.length]!;
            for (const f of framer.push(wire.subarray(offset, offset + size))) got.push(f.payload);
            offset += size;
          }
          assert.deepEqual(got.map((b) => b.toString('hex')), payloads.map((p) => Buffer.from(p).toString('hex')));
        },
      ),
    );
  });

  it('property: arbitrary bytes never throw anything but a MeshgateError', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }), (chunks) => {
        const framer = new PacketFramer(256);
        try {
          for (const chunk of chunks) framer.push(Buffer.from(chunk));
        } catch (error) {
          assert.ok(isMeshgateError(error), String(error));
        }
      }),
    );
  });
});

/**
 * Runs `work` counting the bytes copied between buffers: every way Node copies one
 * buffer's bytes into another is wrapped for the call and restored after it.
 */
function countingCopies<T>(work: () => T): { result: T; copied: number; cpuMs: number } {
  const concat = Buffer.concat;
  const copy = Buffer.prototype.copy;
  const set = Uint8Array.prototype.set;
  const from = Buffer.from;
  let copied = 0;
  let inside = 0; // copies one counted call makes internally are not counted again
  const counted = <A extends unknown[], R>(fn: (...args: A) => R, bytes: (result: R, args: A) => number) =>
    function (this: unknown, ...args: A): R {
      inside++;
      try {
        const result = fn.apply(this, args);
        if (inside === 1) copied += bytes(result, args);
        return result;
      } finally {
        inside--;
      }
    };
  Buffer.concat = counted(concat, (out) => out.length);
  Buffer.prototype.copy = counted(copy as (...args: unknown[]) => number, (n) => n) as typeof copy;
  Uint8Array.prototype.set = counted(set, (_, [source]) => (source as ArrayLike<number>).length);
  Buffer.from = counted(from as (...args: unknown[]) => Buffer, (out, [source]) => (ArrayBuffer.isView(source) ? out.length : 0)) as typeof Buffer.from;
  const started = process.cpuUsage();
  try {
    const result = work();
    const cpu = process.cpuUsage(started);
    return { result, copied, cpuMs: (cpu.user + cpu.system) / 1000 };
  } finally {
    Buffer.concat = concat;
    Buffer.prototype.copy = copy;
    Uint8Array.prototype.set = set;
    Buffer.from = from;
  }
}

describe('PacketFramer stays linear', () => {
  it('copies a 16 MiB COM_QUERY arriving in 64 KiB chunks about twice, not once per chunk', (t) => {
    const size = 16 * 1024 * 1024; // one 0xFFFFFF packet and a 1-byte one
    const head = Buffer.from("\x03SELECT LENGTH('", 'latin1');
    const payload = Buffer.alloc(size, 'x');
    head.copy(payload);
    payload.write("')", size - 2, 'latin1');
    const wire = encodeMessage(payload, 0);
    assert.equal(packetCount(size), 2);
    const chunk = 64 * 1024;
    const { result: frames, copied, cpuMs } = countingCopies(() => {
      const framer = new PacketFramer(64 * 1024 * 1024);
      const out: Frame[] = [];
      for (let offset = 0; offset < wire.length; offset += chunk) out.push(...framer.push(wire.subarray(offset, offset + chunk)));
      assert.equal(framer.buffered, 0);
      return out;
    });
    t.diagnostic(`copied ${copied} bytes for a ${wire.length}-byte message, in ${cpuMs.toFixed(1)} ms of CPU`);
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.seq, 0);
    assert.equal(frames[0]!.lastSeq, 1);
    assert.ok(frames[0]!.payload.equals(payload));
    assert.ok(frames[0]!.raw.equals(wire));
    // One copy gathers `raw`, one more drops the inner header from `payload`.
    assert.ok(copied <= 2 * wire.length, `copied ${copied} bytes for a ${wire.length}-byte message`);
    assert.ok(cpuMs < 200, `framing took ${cpuMs.toFixed(1)} ms of CPU`);
  });

  it('frames many small packets in one chunk as views of it, copying nothing', () => {
    const wire = Buffer.concat(Array.from({ length: 1000 }, (_, i) => encodeMessage(Buffer.from(`\x03SELECT ${i}`), 0)));
    const { result: frames, copied } = countingCopies(() => new PacketFramer(1024).push(wire));
    assert.equal(frames.length, 1000);
    assert.equal(copied, 0);
    for (const frame of frames) {
      assert.equal(frame.raw.buffer, wire.buffer);
      assert.equal(frame.payload.buffer, wire.buffer);
    }
    assert.equal(frames[999]!.payload.toString('latin1'), '\x03SELECT 999');
  });

  it('maxFrames stops early and takeRemainder hands back exactly the rest, at every split', () => {
    const first = encodeMessage(Buffer.from('\x20\x00\x00\x00'), 1); // an SSLRequest-like message
    const after = Buffer.from('\x16\x03\x01 TLS hello bytes');
    const stream = Buffer.concat([first, after]);
    for (let split = 0; split <= stream.length; split++) {
      const framer = new PacketFramer(1024);
      const frames = [...framer.push(stream.subarray(0, split), 1)];
      if (frames.length === 0) frames.push(...framer.push(stream.subarray(split), 1));
      else framer.push(stream.subarray(split), 0);
      assert.equal(frames.length, 1, `split at ${split}`);
      assert.deepEqual(frames[0]!.raw, first);
      assert.equal(framer.buffered, after.length);
      assert.deepEqual(framer.takeRemainder(), after, `split at ${split}`);
      assert.equal(framer.buffered, 0);
      assert.equal(framer.takeRemainder(), null);
    }
  });

  it('refuses a continuation that takes the message over the limit from its header', () => {
    const framer = new PacketFramer(MAX_PACKET_PAYLOAD + 10);
    const wire = encodeMessage(Buffer.alloc(MAX_PACKET_PAYLOAD + 100), 0);
    const end = MAX_PACKET_PAYLOAD + 2 * HEADER_BYTES; // both headers, none of the second body
    framer.push(wire.subarray(0, end - 2));
    assert.throws(
      () => framer.push(wire.subarray(end - 2, end)),
      (error: unknown) => isMeshgateError(error) && error.code === 'MG_PACKET_TOO_LARGE',
    );
  });

  it('property: any chunking yields the frames feeding it whole does, seq, lastSeq and raw included', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.nat(255)), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (messages, rawCuts) => {
          const wire = Buffer.concat(messages.map(([payload, seq]) => encodeMessage(Buffer.from(payload), seq)));
          assertSameFrames(chunked(wire, rawCuts), new PacketFramer(1024).push(wire));
        },
      ),
    );
  });

  it('property: so does any chunking of a message of 0xFFFFFF packets, cut near its headers or anywhere', () => {
    const small = [encodeMessage(Buffer.from('\x0e'), 0), encodeMessage(Buffer.from('\x03SELECT 1'), 0)];
    const bigPayload = Buffer.alloc(MAX_PACKET_PAYLOAD + 7, 0x62);
    bigPayload.write('end', bigPayload.length - 3);
    const big = encodeMessage(bigPayload, 255); // seq wraps to 0
    const wire = Buffer.concat([small[0]!, big, small[1]!]);
    const start = small[0]!.length;
    const edges = [start, start + HEADER_BYTES, start + MAX_PACKET_PAYLOAD + HEADER_BYTES, start + big.length];
    const whole = new PacketFramer(64 * 1024 * 1024).push(wire);
    assert.deepEqual(whole.map((f) => [f.seq, f.lastSeq]), [[0, 0], [255, 0], [0, 0]]);
    assert.ok(whole[1]!.payload.equals(bigPayload) && whole[1]!.raw.equals(big));
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.nat(), fc.tuple(fc.constantFrom(...edges), fc.integer({ min: -5, max: 5 }))), { maxLength: 10 }), (cuts) => {
        const near = cuts.map((cut) => (typeof cut === 'number' ? cut : Math.max(0, cut[0] + cut[1])));
        assertSameFrames(chunked(wire, near, 64 * 1024 * 1024), whole);
      }),
      { numRuns: 20 },
    );
  });
});

/** Asserts two framings agree: sequence ids and bytes, compared without building strings. */
function assertSameFrames(got: Frame[], want: Frame[]): void {
  assert.deepEqual(got.map((f) => [f.seq, f.lastSeq, f.payload.length, f.raw.length]), want.map((f) => [f.seq, f.lastSeq, f.payload.length, f.raw.length]));
  for (let i = 0; i < got.length; i++) {
    assert.ok(got[i]!.payload.equals(want[i]!.payload), `payload of frame ${i}`);
    assert.ok(got[i]!.raw.equals(want[i]!.raw), `raw of frame ${i}`);
  }
}

/** Frames `wire` fed in pieces cut at `cuts` (taken modulo its length, in any order). */
function chunked(wire: Buffer, cuts: number[], maxMessageBytes = 1024): Frame[] {
  const framer = new PacketFramer(maxMessageBytes);
  const frames: Frame[] = [];
  let offset = 0;
  for (const cut of [...cuts.map((c) => c % (wire.length + 1)).sort((a, b) => a - b), wire.length]) {
    frames.push(...framer.push(wire.subarray(offset, cut)));
    offset = cut;
  }
  assert.equal(framer.buffered, 0);
  return frames;
}
