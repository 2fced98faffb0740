// DER frames around already-encoded parts, as the S/MIME encryption writes them per message, against asn1js.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as asn1js from 'asn1js';
import { derFrame, derHeader, TAG_OCTET_STRING } from '../src/smime/der-frame.ts';

describe('derFrame and derHeader', () => {
  it('encode every length form as asn1js does', () => {
    for (const length of [0, 1, 127, 128, 255, 256, 65_535, 65_536, 100_000, 0xff_ffff]) {
      const content = Buffer.alloc(length, 7);
      const expected = Buffer.from(new asn1js.OctetString({ valueHex: content }).toBER(false));
      const framed = derFrame(TAG_OCTET_STRING, content.subarray(0, length >> 1), content.subarray(length >> 1));
      assert.ok(framed.equals(expected), `${length} content octets`);
      assert.ok(derHeader(TAG_OCTET_STRING, length).equals(expected.subarray(0, expected.length - length)));
    }
  });

  it('refuses lengths beyond four length octets', () => {
    assert.throws(() => derHeader(TAG_OCTET_STRING, 0x100_0000), RangeError);
  });
});
