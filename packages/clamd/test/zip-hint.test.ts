import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { mayCarryZip } from '../src/zip-hint.ts';

const ZIP_START = Buffer.from('504b0304140000000800', 'hex');

describe('mayCarryZip', () => {
  it('sees a zip in binary, in base64 at every alignment, however the lines are broken, and in quoted-printable', () => {
    for (let pad = 0; pad < 3; pad++) {
      const base64 = Buffer.concat([randomBytes(pad), ZIP_START, randomBytes(30)]).toString('base64');
      for (const width of [76, 3, 1]) {
        const lines = base64.replace(new RegExp(`.{${width}}`, 'g'), '$&\r\n');
        assert.ok(mayCarryZip([Buffer.from(`Content-Transfer-Encoding: base64\r\n\r\n${lines}`)]), `${pad} ${width}`);
      }
    }
    assert.ok(mayCarryZip([Buffer.from('x'), Buffer.concat([Buffer.from('ab'), ZIP_START])]));
    const qp = 'Content-Transfer-Encoding: Quoted-Printable\r\n\r\n';
    assert.ok(mayCarryZip([Buffer.from(`${qp}=50K=03=`), Buffer.from('\r\n=04rest')]));
    // Split across chunks: the end of one, the start of the next; the declaration folded and in any case.
    const split = Buffer.from(`Content-Transfer-Encoding:\r\n (x) BASE64\r\n\r\nxx${ZIP_START.toString('base64')}`);
    for (const at of [4, split.length - 6, split.length - 3]) {
      assert.ok(mayCarryZip([split.subarray(0, at), split.subarray(at)]), String(at));
    }
  });

  it('reads base64 and quoted-printable only after a part declares them (no decoder decodes them otherwise)', () => {
    assert.equal(mayCarryZip([Buffer.from(`Subject: x\r\n\r\n${ZIP_START.toString('base64')}\r\n`)]), false);
    assert.equal(mayCarryZip([Buffer.from('Subject: x\r\n\r\n=50K=03=04\r\n')]), false);
  });

  it('does not see one in plain text', () => {
    const text = Buffer.from('Sehr geehrte Damen und Herren, anbei die Unterlagen zum Bescheid.\r\n'.repeat(2000));
    assert.equal(mayCarryZip([text]), false);
  });
});
