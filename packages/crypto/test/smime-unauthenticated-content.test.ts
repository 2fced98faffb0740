// holdsNoiseBytes: what changed blocks of AES-CBC content leave behind (EFAIL CBC gadgets), and what honest MIME holds.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { holdsNoiseBytes } from '../src/index.ts';

/** Noise as a decrypted block of changed ciphertext gives it, the same on every run (no flaky test). */
function noise(index: number, length: number): Buffer {
  return createHash('sha256').update(`noise ${index}`).digest().subarray(0, length);
}

describe('holdsNoiseBytes', () => {
  it('passes what honest senders put inside EnvelopedData', () => {
    const honest = [
      'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln, 10 € \t\f\r\n',
      'Content-Type: text/html; charset=us-ascii\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>Hallo=\r\n</p>\r\n',
      'Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n',
    ];
    for (const entity of honest) assert.equal(holdsNoiseBytes(Buffer.from(entity, 'utf8')), false, entity);
  });

  it('catches a block of noise, as a chosen block brings one, nearly always', () => {
    const text = Buffer.from('Content-Type: text/plain\r\n\r\nAktenzeichen 4711\r\n');
    let caught = 0;
    for (let i = 0; i < 2000; i++) {
      if (holdsNoiseBytes(Buffer.concat([text, noise(i, 16), Buffer.from('<img src="http:/'), text]))) caught++;
    }
    assert.equal(caught, 2000);
    // 3DES: an 8-byte block of noise per chosen block.
    let caughtDes = 0;
    for (let i = 0; i < 2000; i++) if (holdsNoiseBytes(Buffer.concat([text, noise(i, 8), text]))) caughtDes++;
    assert.ok(caughtDes >= 1990, `${caughtDes} of 2000`);
  });

  it('calls 8-bit Latin-1 and controls noise (a false alarm the README names)', () => {
    assert.equal(holdsNoiseBytes(Buffer.from('Gr\xfc\xdfe\r\n', 'latin1')), true);
    assert.equal(holdsNoiseBytes(Buffer.from('a\x00b')), true);
    assert.equal(holdsNoiseBytes(Buffer.from('a\x7fb')), true);
  });
});
