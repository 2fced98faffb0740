import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { uploadChunks } from '../src/upload.ts';

/** A socket stand-in that records each system call's worth of bytes: one write, or one writev of corked frames. */
function recordingSocket(highWaterMark = 16 * 1024) {
  const calls: Buffer[] = [];
  const socket = new Writable({
    highWaterMark,
    write(chunk: Buffer, _encoding, done) {
      calls.push(Buffer.from(chunk));
      setImmediate(done);
    },
    writev(chunks, done) {
      calls.push(Buffer.concat(chunks.map((c) => c.chunk as Buffer)));
      setImmediate(done);
    },
  });
  return { socket: socket as unknown as Socket, calls };
}

const frame = (bytes: Buffer) => {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length, 0);
  return Buffer.concat([length, bytes]);
};
const END = Buffer.alloc(4);
const LIMITS = { maxBytes: 10 * 1024 * 1024, chunkBytes: 64 * 1024 };

describe('uploadChunks', () => {
  it('sends the command, every piece of a small message and the end in one write', async () => {
    const { socket, calls } = recordingSocket();
    const pieces = [Buffer.from('Received: x\r\n'), Buffer.from('From: a\r\n\r\n'), Buffer.from('body')];
    let sentBeforeEnd = 0;
    await uploadChunks(
      socket,
      Readable.from(pieces, { objectMode: false }),
      LIMITS,
      () => {
        sentBeforeEnd = calls.length;
      },
      Buffer.from('zINSTREAM\0'),
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(calls.length, 1);
    assert.equal(sentBeforeEnd, 0, 'the body is reported sent just before the end chunk is handed over');
    assert.deepEqual(calls[0], Buffer.concat([Buffer.from('zINSTREAM\0'), ...pieces.map(frame), END]));
  });

  it('sends a large stream in batches, each byte once and in order, waiting for the socket to drain', async () => {
    const { socket, calls } = recordingSocket(8 * 1024);
    const bytes = Buffer.alloc(300 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251;
    const pieces = Array.from({ length: 30 }, (_, i) => bytes.subarray(i * 10 * 1024, (i + 1) * 10 * 1024));
    const limits = { ...LIMITS, chunkBytes: 16 * 1024 };
    await uploadChunks(socket, Readable.from(pieces, { objectMode: false }), limits, () => {});
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(calls.length >= 5 && calls.length <= 8, `${calls.length} writes for 300 KiB in 64 KiB batches`);
    for (const call of calls) assert.ok(call.length <= 64 * 1024 + 16 * 1024 + 8, `batch of ${call.length}`);
    // The frames, read back: each at most a chunk, together the stream, then the end.
    const sent = Buffer.concat(calls);
    const payload: Buffer[] = [];
    let at = 0;
    for (;;) {
      const length = sent.readUInt32BE(at);
      at += 4;
      if (length === 0) break;
      assert.ok(length <= limits.chunkBytes);
      payload.push(sent.subarray(at, at + length));
      at += length;
    }
    assert.equal(at, sent.length, 'nothing after the end chunk');
    assert.deepEqual(Buffer.concat(payload), bytes);
  });

  it('sends what a slow source gave so far without waiting for more', async () => {
    const { socket, calls } = recordingSocket();
    const source = new Readable({ read() {} });
    source.push(Buffer.from('first'));
    const upload = uploadChunks(socket, source, LIMITS, () => {}, Buffer.from('zINSTREAM\0'));
    // Until it writes (a fixed wait failed on a loaded machine: the timer's turn came before the upload's); the source
    // stays open, so an upload that waited for more would never write and the test would fail here.
    for (const started = Date.now(); calls.length === 0 && Date.now() - started < 10_000; ) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0], Buffer.concat([Buffer.from('zINSTREAM\0'), frame(Buffer.from('first'))]));
    source.push(null);
    await upload;
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(calls.at(-1), END);
  });

  it('splits a piece larger than a chunk into chunks of at most chunkBytes', async () => {
    const { socket, calls } = recordingSocket();
    const piece = Buffer.alloc(10_000, 7);
    await uploadChunks(
      socket,
      Readable.from([piece], { objectMode: false }),
      { ...LIMITS, chunkBytes: 4096 },
      () => {},
    );
    await new Promise((resolve) => setImmediate(resolve));
    const expected = [piece.subarray(0, 4096), piece.subarray(4096, 8192), piece.subarray(8192)].map(frame);
    assert.deepEqual(Buffer.concat(calls), Buffer.concat([...expected, END]));
  });
});
