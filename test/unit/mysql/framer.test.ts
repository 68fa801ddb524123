import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeMessage, PacketFramer, packetCount } from '../../../src/engines/mysql/codec/framer.ts';
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
