// displayText: header text fit for one line, shown in the portal or written again into a header field.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { displayText } from '../src/index.ts';

describe('displayText', () => {
  const cases: Array<[string, string, string]> = [
    ['a line break (a two-line title)', 'Bescheid vom 2.3.\nAz. 4711', 'Bescheid vom 2.3. Az. 4711'],
    ['CR LF and a folded header in the text', 'Bescheid\r\nBcc: x@evil.example', 'Bescheid Bcc: x@evil.example'],
    ['other controls, DEL and C1', 'A\u0000B\u001bC\u007fD\u0085E', 'ABCDE'],
    ['bidi overrides and zero-width characters', 'Rechnung\u202eexe.pdf\u200b', 'Rechnungexe.pdf'],
    ['runs of white space and the ends', '  a \t\t b  ', 'a b'],
    ['decomposed umlauts (NFC)', 'Gru\u0308\u00dfe', 'Grüße'],
  ];
  for (const [what, value, expected] of cases) {
    it(`takes out ${what}`, () => {
      assert.equal(displayText(value), expected);
    });
  }

  it('cuts to max characters with an ellipsis, and keeps all of it without max', () => {
    assert.equal(displayText('abcdef', 4), 'abc…');
    assert.equal(displayText('x'.repeat(5000)).length, 5000);
  });
});
