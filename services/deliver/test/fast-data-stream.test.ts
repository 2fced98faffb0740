// fast-data-stream.ts against nodemailer's own DataStream._transform: the same output and counters on random
// input (CR, LF and dots dense) cut into random chunks, and the patch in place in a real connection's DATA.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { describe, it } from 'node:test';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';
import { fastDataStreamTransform, installFastDataStream, nodemailerTransform } from '../src/fast-data-stream.ts';

type Transform = typeof nodemailerTransform;

/** Runs a fresh DataStream with `transform` over the chunks; its output, flush included, and its counters. */
async function run(transform: Transform, chunks: (Buffer | string)[]) {
  const stream = new DataStream();
  (stream as unknown as { _transform: Transform })._transform = transform;
  const out: Buffer[] = [];
  stream.on('data', (b: Buffer) => out.push(b));
  const ended = new Promise((resolve) => stream.on('end', resolve));
  for (const c of chunks) stream.write(c);
  stream.end();
  await ended;
  return { bytes: Buffer.concat(out), counts: [stream.inByteCount, stream.outByteCount] };
}

const ALPHABET = Buffer.from('\r\n.a\r\n..\n');

function randomChunks(): Buffer[] {
  const length = randomInt(0, 400);
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = ALPHABET[randomInt(ALPHABET.length)] as number;
  const chunks: Buffer[] = [];
  for (let at = 0; at < length; ) {
    const size = randomInt(0, 9); // empty chunks too
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

describe('fast DataStream transform', () => {
  it('writes what nodemailer writes, byte for byte, on 3000 random inputs cut at random places', async () => {
    for (let round = 0; round < 3000; round++) {
      const chunks = randomChunks();
      const theirs = await run(nodemailerTransform, chunks);
      const ours = await run(fastDataStreamTransform as Transform, chunks);
      assert.deepEqual(ours, theirs, JSON.stringify(Buffer.concat(chunks).toString()));
    }
  });

  it('handles the cases by name: smuggling line ends, dots at every line start, strings, a text with none', async () => {
    const cases: (Buffer | string)[][] = [
      ['.\r\n'],
      ['a\r.\r\n.\r\n'],
      ['a\n.\n', '.b'],
      ['a\r', '.b\r', '\n.'],
      ['line one\r\n..two\r\n.', '\r\n'],
      ['no line end at all'],
      [Buffer.from('Subject: x\r\n\r\n'), 'body as a string\r\n.\r\n'],
    ];
    for (const chunks of cases) {
      assert.deepEqual(await run(fastDataStreamTransform as Transform, chunks), await run(nodemailerTransform, chunks));
    }
  });

  it('is installed on the nodemailer it was checked against', () => {
    const first = installFastDataStream();
    assert.ok(first === 'installed' || first === 'already', JSON.stringify(first));
    assert.equal(installFastDataStream(), 'already');
    assert.equal(DataStream.prototype._transform, fastDataStreamTransform);
  });
});
