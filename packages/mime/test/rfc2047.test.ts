import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeEncodedWords, encodeWords } from '../src/index.ts';

describe('encoding words', () => {
  const texts: Array<[string, string]> = [
    ['umlauts', 'Grüße aus dem Bauamt – Ihr Antrag auf Baugenehmigung für das Grundstück Flurstück 12/3 ✓'],
    ['four-byte characters', '😀'.repeat(30)],
    ['long ASCII', 'x'.repeat(200)],
  ];
  for (const [name, text] of texts) {
    it(`writes ${name} as folded UTF-8 B words of at most 75 characters, whole characters each`, () => {
      const encoded = encodeWords(text);
      for (const word of encoded.split('\r\n ')) {
        assert.ok(word.length <= 75, word);
        assert.match(word, /^=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=$/);
        assert.doesNotMatch(Buffer.from(word.slice(10, -2), 'base64').toString('utf8'), /\uFFFD/);
      }
      assert.equal(decodeEncodedWords(encoded), text);
    });
  }

  it('writes the words exactly as before', () => {
    assert.equal(encodeWords('Grüße'), '=?UTF-8?B?R3LDvMOfZQ==?=');
    assert.equal(encodeWords(''), '');
  });
});

describe('decoding words', () => {
  const cases: Array<[string, string, string]> = [
    ['Q in Latin-1 with underscores', '=?ISO-8859-1?Q?Gr=FC=DFe_aus?=', 'Grüße aus'],
    ['B in UTF-8', '=?UTF-8?B?QmVybGlu?=', 'Berlin'],
    ['lower-case encoding letters', '=?utf-8?q?K=C3=B6ln?=', 'Köln'],
    [
      'adjacent words, the space between them dropped',
      '=?ISO-8859-1?Q?Gr=FC=DFe_aus?= =?UTF-8?B?QmVybGlu?=',
      'Grüße ausBerlin',
    ],
    ['words among plain text', 'Re: =?UTF-8?B?R3LDvMOfZQ==?= again', 'Re: Grüße again'],
    ['a language after the charset (RFC 2231)', '=?UTF-8*de?Q?Stra=C3=9Fe?=', 'Straße'],
    ['an unknown charset, as Latin-1', '=?x-unknown?Q?a=E4?=', 'aä'],
    ['plain text', 'Bescheid vom 3. November', 'Bescheid vom 3. November'],
  ];
  for (const [name, input, expected] of cases) {
    it(`decodes ${name}`, () => {
      assert.equal(decodeEncodedWords(input), expected);
    });
  }
});
