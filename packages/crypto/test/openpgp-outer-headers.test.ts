// The outer headers of a PGP/MIME message: values copied safely, a non-ASCII or long subject encoded (RFC 2047).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeSubject, formatOuterHeaders } from '../src/openpgp/outer-headers.ts';

const base = {
  from: 'Bauamt <bauamt@stadt.example.gov>',
  to: 'buerger@example.net',
  subject: 'Bescheid',
  date: new Date('2026-11-28T08:05:09Z'),
  messageId: 'abc@gateway.example.gov',
};

describe('formatOuterHeaders', () => {
  it('writes the five headers with CRLF, brackets the message id and formats the date in UTC', () => {
    assert.equal(
      formatOuterHeaders(base),
      'From: Bauamt <bauamt@stadt.example.gov>\r\nTo: buerger@example.net\r\nSubject: Bescheid\r\n' +
        'Date: Sat, 28 Nov 2026 08:05:09 +0000\r\nMessage-ID: <abc@gateway.example.gov>\r\n',
    );
  });

  it('adds In-Reply-To and References when given and accepts folded values', () => {
    const text = formatOuterHeaders({
      ...base,
      to: 'a@example.net,\r\n b@example.net',
      inReplyTo: '<x@example.net>',
      references: '<w@example.net>\r\n <x@example.net>',
    });
    assert.match(text, /\r\nTo: a@example\.net,\r\n b@example\.net\r\n/);
    assert.match(text, /\r\nIn-Reply-To: <x@example\.net>\r\nReferences: <w@example\.net>\r\n <x@example\.net>\r\n$/);
  });

  it('refuses a value with a line break that would start a new header, non-ASCII or nothing', () => {
    for (const to of ['a@example.net\r\nBcc: evil@example.net', 'a@example.net\nX: y', 'bürger@example.net', ' ']) {
      assert.throws(() => formatOuterHeaders({ ...base, to }), { code: 'PGP_INVALID_HEADER' });
    }
  });
});

describe('encodeSubject', () => {
  it('leaves a short ASCII subject as it is', () => {
    assert.equal(encodeSubject('Ihr Antrag vom 3. November'), 'Ihr Antrag vom 3. November');
  });

  it('encodes non-ASCII as UTF-8 encoded-words of at most 75 characters that decode to the subject', () => {
    const subject = 'Grüße aus dem Bauamt – Ihr Antrag auf Baugenehmigung für das Grundstück Flurstück 12/3 ✓';
    const encoded = encodeSubject(subject);
    const words = encoded.split('\r\n ');
    assert.ok(words.length > 1);
    assert.ok(words.every((word) => word.length <= 75 && /^=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=$/.test(word)));
    const decoded = words.map((word) => Buffer.from(word.slice(10, -2), 'base64').toString('utf8')).join('');
    assert.equal(decoded, subject);
  });

  it('encodes a very long ASCII subject so that it folds', () => {
    const encoded = encodeSubject('x'.repeat(2000));
    assert.ok(encoded.split('\r\n').every((line) => line.length < 998));
  });
});
