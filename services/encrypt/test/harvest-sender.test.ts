// The address a harvested key or certificate is stored for is the one From address as ingest's DMARC check read it
// (nodemailer's addressparser, through mailauth): a `<address>` in a comment is not the author. Read as the author,
// `From: fremder@extern.example (<buergerin@post.example>)` passed DMARC for the stranger's own domain and stored the
// stranger's OpenPGP key, pending, for the citizen's address.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromAddress } from '../src/harvest-smime-certificates.ts';

describe('fromAddress: the sender a harvest is stored for', () => {
  const cases: Array<[string, string | undefined]> = [
    ['buergerin@post.example', 'buergerin@post.example'],
    ['Buergerin <buergerin@post.example>', 'buergerin@post.example'],
    ['"Buergerin, Erika" <buergerin@post.example>', 'buergerin@post.example'],
    ['buergerin@post.example (privat)', 'buergerin@post.example'],
    ['"buergerin@post.example" <buergerin@post.example>', 'buergerin@post.example'],
    // The address DMARC checked is the stranger's: a key or certificate may be stored for it, never for the citizen's.
    ['fremder@extern.example (<buergerin@post.example>)', 'fremder@extern.example'],
    ['fremder@extern.example (Buergerin <buergerin@post.example>)', 'fremder@extern.example'],
    ['"buergerin@post.example" <fremder@extern.example>', 'fremder@extern.example'],
    ['Gruppe: fremder@extern.example;', 'fremder@extern.example'],
    // Two authors: nothing.
    ['<buergerin@post.example>, fremder@extern.example', undefined],
    ['a@post.example, b@post.example', undefined],
    ['Gruppe: a@post.example, b@post.example;', undefined],
    ['Niemand', undefined],
    ['', undefined],
  ];
  for (const [value, expected] of cases) {
    it(`${JSON.stringify(value)} → ${expected ?? 'nothing'}`, () => {
      assert.equal(fromAddress(value), expected);
    });
  }
});
