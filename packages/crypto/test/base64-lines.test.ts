// The base64 line writer behind S/MIME bodies and OpenPGP armor, and the pooled random bytes the encryptors draw
// their keys from.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Base64LineWriter, createBase64LineEncoder } from '../src/base64-lines.ts';
import { pooledRandomBytes } from '../src/random-pool.ts';

/** The reference: base64 of everything, cut into lines of `lineChars`, each ending in CRLF. */
function reference(data: Buffer, lineChars: number): string {
  const text = data.toString('base64');
  let out = '';
  for (let at = 0; at < text.length; at += lineChars) out += `${text.slice(at, at + lineChars)}\r\n`;
  return out;
}

/** `data` cut at random places into calls of random pieces (some empty), written with head and tail text. */
function writeInRandomPieces(data: Buffer, lineChars: number): string {
  const writer = new Base64LineWriter(lineChars);
  const outputs: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const pieces: Buffer[] = [];
    for (let count = Math.floor(Math.random() * 4); count >= 0 && at < data.length; count--) {
      const length = Math.min(data.length - at, Math.floor(Math.random() * (Math.random() < 0.2 ? 70_000 : 200)));
      pieces.push(data.subarray(at, at + length));
      at += length;
    }
    outputs.push(writer.write(pieces));
  }
  outputs.push(writer.write([], { last: true }));
  return Buffer.concat(outputs).toString('latin1');
}

describe('Base64LineWriter', () => {
  it('writes the same lines as base64 of the whole input, however the input is cut', () => {
    for (const lineChars of [76, 64]) {
      for (const size of [0, 1, 2, 3, 47, 48, 49, 56, 57, 58, 1000, 65_536, 150_001]) {
        const data = randomBytes(size);
        for (let round = 0; round < 5; round++) {
          assert.equal(writeInRandomPieces(data, lineChars), reference(data, lineChars), `${lineChars}/${size}`);
        }
      }
    }
  });

  it('puts head text before the lines and tail text after them, in one buffer', () => {
    const data = randomBytes(500);
    const writer = new Base64LineWriter(64);
    const head = Buffer.from('-----BEGIN-----\r\n\r\n');
    const tail = Buffer.from('-----END-----\r\n');
    const first = writer.write([data.subarray(0, 100)], { head });
    const last = writer.write([data.subarray(100)], { last: true, tail });
    assert.equal(
      Buffer.concat([first, last]).toString('latin1'),
      `-----BEGIN-----\r\n\r\n${reference(data, 64)}-----END-----\r\n`,
    );
    assert.equal(
      new Base64LineWriter().write([], { head, last: true, tail }).toString('latin1'),
      '-----BEGIN-----\r\n\r\n-----END-----\r\n',
      'no data: no lines at all',
    );
  });

  it('encodes one piece larger than a single toString call takes', () => {
    const data = randomBytes(3 * 1024 * 1024 + 5);
    assert.equal(new Base64LineWriter().write([data], { last: true }).toString('latin1'), reference(data, 76));
  });

  it('holds back only a partial line and refuses line lengths that are not a multiple of 4', () => {
    const writer = new Base64LineWriter(76);
    assert.equal(writer.write([randomBytes(56)]).length, 0);
    assert.equal(writer.write([randomBytes(1)]).length, 78);
    assert.throws(() => new Base64LineWriter(75), RangeError);
    assert.throws(() => new Base64LineWriter(0), RangeError);
  });

  it('keeps the push/end encoder of the signing code', () => {
    const data = randomBytes(1000);
    const encoder = createBase64LineEncoder();
    const parts = [encoder.push(data.subarray(0, 333)), encoder.push(data.subarray(333)), encoder.end()];
    assert.equal(Buffer.concat(parts).toString('latin1'), reference(data, 76));
  });
});

describe('pooledRandomBytes', () => {
  it('hands out fresh bytes in buffers of their own, also across refills of the pool', () => {
    const first = pooledRandomBytes(48);
    const kept = Buffer.from(first);
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const bytes = pooledRandomBytes(66);
      assert.equal(bytes.length, 66);
      const hex = bytes.toString('hex');
      assert.ok(!seen.has(hex), 'no draw repeats');
      seen.add(hex);
    }
    assert.ok(first.equals(kept), 'later draws and refills do not touch what was handed out');
    const counts = new Array<number>(256).fill(0);
    for (const hex of seen) for (const byte of Buffer.from(hex, 'hex')) counts[byte] = (counts[byte] as number) + 1;
    assert.ok(
      counts.every((count) => count > 0),
      'every byte value occurs',
    );
  });

  it('refuses sizes it does not pool', () => {
    assert.equal(pooledRandomBytes(0).length, 0);
    assert.throws(() => pooledRandomBytes(1025), RangeError);
    assert.throws(() => pooledRandomBytes(-1), RangeError);
    assert.throws(() => pooledRandomBytes(1.5), RangeError);
  });
});
