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
    ['CR CR LF and LF LF', 'a\r\r\nb\n\nc', 'a\r\r\nb\r\n\r\nc', 'a\r\n\r\nb\r\n\r\nc'],
    ['a CR last', 'a\nb\r', 'a\r\nb\r', 'a\r\nb\r\n'],
    ['line ends only', '\n\r\n\r', '\r\n\r\n\r', '\r\n\r\n\r\n'],
  ];
  for (const [name, input, fixed, canonical] of cases) {
    it(`fixes only the bare LF of ${name}, or makes every line end canonical`, () => {
      assert.equal(bareLfToCrlf(Buffer.from(input)).toString(), fixed);
      assert.equal(canonicalLineEnds(Buffer.from(input)).toString(), canonical);
    });
  }

  it('reads any bytes as the regular expressions of the rules do', () => {
    // Pseudo-random bytes rich in CR and LF, 8-bit ones too; each rule as a regular expression over Latin-1 text.
    let seed = 1;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed >> 16;
    };
    const random = Buffer.from(Array.from({ length: 20_000 }, () => [0x0d, 0x0a, 0x41, 0xfc][next() % 4] as number));
    // Dense line ends are copied byte by byte, sparse ones a line at a time.
    const sparse = Buffer.from(`\n${'x'.repeat(40)}\r\n${'y'.repeat(40)}\n\r`.repeat(100));
    // Lone CRs among long lines; long lines first and dense line ends after them (counted byte by byte from there).
    const sparseCr = Buffer.from(`${'x'.repeat(40)}\r${'y'.repeat(40)}\r\n`.repeat(100));
    const denseTail = Buffer.concat([sparse, sparseCr, Buffer.from('a\rb\nc\r\n'.repeat(2_000)), Buffer.from('\r')]);
    for (const bytes of [random, sparse, sparseCr, denseTail, Buffer.alloc(0)]) {
      const text = bytes.toString('latin1');
      assert.deepEqual(bareLfToCrlf(bytes), Buffer.from(text.replace(/(?<!\r)\n/g, '\r\n'), 'latin1'));
      assert.deepEqual(canonicalLineEnds(bytes), Buffer.from(text.replace(/\r\n|\r|\n/g, '\r\n'), 'latin1'));
    }
  });

  it('returns the same buffer when nothing changes', () => {
    const canonical = Buffer.from('a\r\nb\r\n');
    assert.equal(bareLfToCrlf(canonical), canonical);
    assert.equal(canonicalLineEnds(canonical), canonical);
  });
});

describe('line ends against the rules written as regular expressions', () => {
  // Random short buffers of line ends and text, dense and sparse (the two ways each function writes its output).
  const asRule = (bytes: Buffer, rule: RegExp) => Buffer.from(bytes.toString('latin1').replace(rule, '\r\n'), 'latin1');
  const alphabet = [0x0a, 0x0d, 0x41, 0x20];
  let seed = 20261206;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31; // a fixed sequence: the same buffers every run
    return seed / 2 ** 31;
  };
  const sample = (dense: boolean, length: number) =>
    Buffer.from(
      Array.from({ length }, () =>
        dense || next() < 0.05 ? (alphabet[Math.floor(next() * alphabet.length)] as number) : 0x41,
      ),
    );
  it('bareLfToCrlf makes each bare LF a CRLF and keeps the rest; canonicalLineEnds makes every line end a CRLF', () => {
    for (let length = 0; length < 2000; length++) {
      for (const dense of [true, false]) {
        const bytes = sample(dense, length);
        assert.deepEqual(bareLfToCrlf(bytes), asRule(bytes, /(?<!\r)\n/g));
        assert.deepEqual(canonicalLineEnds(bytes), asRule(bytes, /\r\n|\r|\n/g));
      }
    }
  });
});
