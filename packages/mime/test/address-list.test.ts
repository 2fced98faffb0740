import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressLikeTokens, listedAddresses, listedMailboxes } from '../src/index.ts';

describe('the addresses of an address-list field', () => {
  const table: Array<[string, string, string[]]> = [
    ['a display name that looks like an address', '"own@a.example" <boss@a.example>', ['boss@a.example']],
    ['a comment that looks like an address', 'boss@a.example (own@a.example)', ['boss@a.example']],
    ['two mailboxes', 'own@a.example, "B" <boss@a.example>', ['own@a.example', 'boss@a.example']],
    ['a group', 'Team: a@x.example, b@y.example;', ['a@x.example', 'b@y.example']],
    ['an empty group', 'undisclosed-recipients:;', []],
    ['a quoted local part', '"boss"@a.example', ['boss@a.example']],
    ['a name without an address', 'just a name', ['']],
    ['an encoded-word name', '=?utf-8?q?own@a.example?= <boss@a.example>', ['boss@a.example']],
  ];
  for (const [name, value, addresses] of table) {
    it(`reads ${name}`, () => assert.deepEqual(listedAddresses(value), addresses));
  }
});

describe('what a reader takes for an address', () => {
  it('finds addresses in display names, comments and encoded-words too', () => {
    assert.deepEqual(addressLikeTokens('"own@a.example" <boss@a.example>'), ['own@a.example', 'boss@a.example']);
    assert.deepEqual(addressLikeTokens('own@a.example (chef@a.example)'), ['own@a.example', 'chef@a.example']);
    assert.deepEqual(addressLikeTokens('=?utf-8?b?Ym9zc0BhLmV4YW1wbGU=?= <own@a.example>'), [
      'own@a.example',
      'boss@a.example',
    ]);
    assert.deepEqual(addressLikeTokens('Anna Muster <anna@a.example>'), ['anna@a.example']);
  });

  it('finds addresses written with an at sign that only looks like one (NFKC: fullwidth, small)', () => {
    for (const at of ['\uFF20', '\uFE6B']) {
      const name = `=?UTF-8?B?${Buffer.from(`boss${at}a.example`).toString('base64')}?=`;
      assert.ok(addressLikeTokens(`${name} <own@b.example>`).includes('boss@a.example'), at);
    }
  });

  it('takes a token for an address when an at sign has something on both sides, as before', () => {
    const value = 'a@b@c, @x.example y@ @@ z@@w (q@r) "s@t"<u@v>';
    assert.deepEqual(addressLikeTokens(value), ['a@b@c', 'z@@w', 'q@r', 's@t', 'u@v']);
  });

  // Ingest reads every From field (the MX port's too) with this: a run of 1 MB without "@" was scanned again from
  // each of its characters (40,000: 1.3 s; the MAX_HEADER_BYTES a header may have: many minutes).
  it('reads a From field of 1 MB without an at sign in one pass', () => {
    assert.deepEqual(addressLikeTokens(`own@a.example, ${'a'.repeat(1024 * 1024)}`), ['own@a.example']);
  });
});

describe('the mailboxes of an address-list field with their names', () => {
  it('keeps display names, decoded after the field was parsed', () => {
    assert.deepEqual(listedMailboxes('=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <j@a.example>, b@b.example'), [
      { name: 'Jürgen Müller', address: 'j@a.example' },
      { name: '', address: 'b@b.example' },
    ]);
  });

  it('does not take an address out of an encoded-word name', () => {
    // The name decodes to "x <evil@e.example>": it stays a name, the address is the one written outside it.
    assert.deepEqual(listedMailboxes('=?utf-8?b?eCA8ZXZpbEBlLmV4YW1wbGU+?= <real@a.example>'), [
      { name: 'x <evil@e.example>', address: 'real@a.example' },
    ]);
  });
});
