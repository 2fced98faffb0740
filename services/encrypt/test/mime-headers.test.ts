// The header work encrypt does on its own: which encrypted form a label claims (whether the message really is one is
// @smgw/crypto's checkWholeMessageEncrypted, tested there), and what goes outside and inside the encryption. (Splitting a message at its header block is @smgw/mime's, tested there.)
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { encryptedFormOf } from '@smgw/crypto';
import { decodeEncodedWords, parseHeaderFields } from '@smgw/mime';
import {
  innerEntity,
  namedInHeader,
  outerHeaderPairs,
  passThroughMessage,
  pgpOuterHeaders,
} from '../src/outer-headers.ts';

const defaults = { mailFrom: 'clerk@behoerde.example', date: new Date('2026-03-02T09:00:00Z'), messageId: 'x@smgw' };

describe('telling encrypted mail from plain', () => {
  const cases: Array<[string, string | undefined]> = [
    ['application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m', 'smime'],
    ['application/x-pkcs7-mime; smime-type="authEnveloped-data"', 'smime'],
    ['application/pkcs7-mime; smime-type=signed-data', undefined],
    ['multipart/encrypted; protocol="application/pgp-encrypted"; boundary=x', 'pgp'],
    ['multipart/signed; protocol="application/pkcs7-signature"', undefined],
    ['text/plain', undefined],
  ];
  for (const [contentType, form] of cases) {
    it(`reads ${contentType} as ${form ?? 'not encrypted'}`, () => {
      assert.equal(encryptedFormOf(parseHeaderFields(`Content-Type: ${contentType}`)), form);
    });
  }
});

describe('outer headers and inner entity', () => {
  const fields = parseHeaderFields(
    [
      'Received: from a by smgw.test; Mon, 02 Mar 2026 10:00:01 +0100',
      'Received: from inside by mail.behoerde.example',
      'From: clerk@behoerde.example',
      'To: a@x.example',
      `Subject: ${Buffer.from('Grüße', 'utf8').toString('latin1')}`,
      'X-Internal: secret',
      'Bcc: hidden@x.example',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
    ].join('\r\n'),
  );

  it('keeps only the fields a client needs outside, with our Received on top and a raw UTF-8 subject encoded', () => {
    const { pairs } = outerHeaderPairs(fields, defaults);
    assert.deepEqual(
      pairs.map(([name]) => name),
      ['Received', 'From', 'To', 'Subject', 'Date', 'Message-ID', 'MIME-Version'],
    );
    assert.equal(pairs[0]?.[1], 'from a by smgw.test; Mon, 02 Mar 2026 10:00:01 +0100');
    const subject = pairs.find(([name]) => name === 'Subject')?.[1] ?? '';
    assert.match(subject, /^=\?UTF-8\?B\?/);
    assert.equal(decodeEncodedWords(subject), 'Grüße');
  });

  it('gives encryptPgpMime the subject as text and the Received field to put in front', () => {
    const { headers, extraLines } = pgpOuterHeaders(outerHeaderPairs(fields, defaults).pairs);
    assert.equal(headers.subject, 'Grüße');
    assert.match(extraLines, /^Received: from a by smgw\.test/);
  });

  it("keeps a Received field only when it is the first field, where ingest puts the gateway's", () => {
    const { pairs } = outerHeaderPairs(
      parseHeaderFields(['From: a@x.example', 'Received: from inside'].join('\r\n')),
      defaults,
    );
    assert.deepEqual(
      pairs.map(([name]) => name),
      ['From', 'Date', 'Message-ID', 'MIME-Version'],
    );
  });

  it('keeps only the message ids of Message-ID, In-Reply-To and References: their comments and phrases are free text', () => {
    const { pairs, dropped } = outerHeaderPairs(
      parseHeaderFields(
        [
          'From: a@behoerde.example',
          'Message-ID: <m1@behoerde.example> (Az. 4711 Pfaendung Mueller)',
          'In-Reply-To: Your message of 3 March about Az. 4711 <r1@buerger.example>',
          'References: <r0@buerger.example> (Widerspruch)\r\n <r1@buerger.example>',
        ].join('\r\n'),
      ),
      defaults,
    );
    const value = (name: string) => pairs.find(([n]) => n === name)?.[1];
    assert.equal(value('Message-ID'), '<m1@behoerde.example>');
    assert.equal(value('In-Reply-To'), '<r1@buerger.example>');
    assert.equal(value('References'), '<r0@buerger.example> <r1@buerger.example>');
    assert.deepEqual(dropped, []);
    // A field with no id at all does not go outside; a Message-ID without one is the gateway's.
    const noIds = outerHeaderPairs(
      parseHeaderFields(
        ['From: a@x.example', 'Message-ID: Akte 4711', 'In-Reply-To: Ihr Schreiben vom 3. Maerz'].join('\r\n'),
      ),
      defaults,
    );
    assert.equal(noIds.pairs.find(([n]) => n === 'Message-ID')?.[1], '<x@smgw>');
    assert.equal(
      noIds.pairs.find(([n]) => n === 'In-Reply-To'),
      undefined,
    );
    assert.deepEqual(noIds.dropped, ['Message-ID', 'In-Reply-To']);
  });

  it('writes MIME-Version 1.0, never the original field with its free-text comment', () => {
    const { pairs } = outerHeaderPairs(
      parseHeaderFields(['From: a@x.example', 'MIME-Version: 1.0 (Az. 4711 Pfaendung Mueller)'].join('\r\n')),
      defaults,
    );
    assert.deepEqual(
      pairs.filter(([name]) => name.toLowerCase() === 'mime-version'),
      [['MIME-Version', '1.0']],
    );
  });

  it('lets mail that passes through encrypted leave with the same outer fields, the checked Content-* fields and its body', async () => {
    const { pairs } = outerHeaderPairs(
      parseHeaderFields(`${fields.map((f) => f.raw).join('\r\n')}\r\nMIME-Version: 1.0 (x)`),
      defaults,
    );
    const content: Array<[string, string]> = [
      ['Content-Type', 'multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"'],
    ];
    const body = Buffer.from('--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n');
    const message = await buffer(passThroughMessage(pairs, content, Readable.from([body])));
    const text = message.toString('latin1');
    const head = text.slice(0, text.indexOf('\r\n\r\n'));
    assert.deepEqual(
      parseHeaderFields(head).map((f) => f.name),
      ['Received', 'From', 'To', 'Subject', 'Date', 'Message-ID', 'MIME-Version', 'Content-Type'],
    );
    assert.match(head, /^MIME-Version: 1\.0$/m);
    assert.doesNotMatch(head, /X-Internal|Bcc|inside|charset/);
    assert.ok(message.subarray(head.length + 4).equals(body), 'the body byte for byte');
  });

  it('puts only the Content-* fields and the body inside', async () => {
    const entity = await buffer(innerEntity(fields, Readable.from([Buffer.from('Hallo\r\n')])));
    assert.equal(
      entity.toString(),
      'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHallo\r\n',
    );
  });
});

describe('who the header names as recipients', () => {
  it('reads every To and Cc field, display names, groups and case aside, and never Bcc', () => {
    const fields = parseHeaderFields(
      [
        'To: "b@x.example" <A@X.example>, Team: c@x.example, d@x.example;',
        'Cc: e@x.example',
        'To: f@x.example',
        'Bcc: hidden@x.example',
        'Reply-To: g@x.example',
      ].join('\r\n'),
    );
    assert.deepEqual(
      [...namedInHeader(fields)],
      ['a@x.example', 'c@x.example', 'd@x.example', 'e@x.example', 'f@x.example'],
    );
  });
});
