import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bareLfToCrlf, canonicalLineEnds, crlfLines, toCrlf } from '../src/index.ts';

describe('line ends of text', () => {
  const cases: Array<[string, string, string]> = [
    ['bare LF', 'a\nb\n', 'a\r\nb\r\n'],
    ['CRLF', 'a\r\nb\r\n', 'a\r\nb\r\n'],
    ['mixed', 'a\nb\r\nc', 'a\r\nb\r\nc'],
    ['a lone CR', 'a\rb\n', 'a\rb\r\n'],
    ['no line break', 'abc', 'abc'],
  ];
  for (const [name, input, expected] of cases) {
    it(`turns ${name} into ${JSON.stringify(expected)}`, () => {
      assert.equal(toCrlf(input), expected);
    });
  }

  it('ends each of a list of lines with CRLF', () => {
    assert.equal(crlfLines(['Action: failed', 'Status: 5.1.1']), 'Action: failed\r\nStatus: 5.1.1\r\n');
  });
});

describe('line ends of bytes', () => {
  const cases: Array<[string, string, string, string]> = [
    // name, input, bare LF fixed, canonical
    ['bare LF', 'a\nb\n', 'a\r\nb\r\n', 'a\r\nb\r\n'],
    ['CRLF', 'a\r\nb', 'a\r\nb', 'a\r\nb'],
    ['a lone CR', 'a\rb\nc', 'a\rb\r\nc', 'a\r\nb\r\nc'],
    ['an LF first', '\nb', '\r\nb', '\r\nb'],
    ['8-bit text', 'Grüße\n', 'Grüße\r\n', 'Grüße\r\n'],
  ];
  for (const [name, input, fixed, canonical] of cases) {
    it(`fixes only the bare LF of ${name}, or makes every line end canonical`, () => {
      assert.equal(bareLfToCrlf(Buffer.from(input)).toString(), fixed);
      assert.equal(canonicalLineEnds(Buffer.from(input)).toString(), canonical);
    });
  }

  it('returns the same buffer when nothing changes', () => {
    const canonical = Buffer.from('a\r\nb\r\n');
    assert.equal(bareLfToCrlf(canonical), canonical);
    assert.equal(canonicalLineEnds(canonical), canonical);
  });
});
