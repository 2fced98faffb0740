import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import {
  findHeaderEnd,
  HeaderBlockError,
  HeaderBudgetError,
  headerBudget,
  headerBytes,
  headerValue,
  identifyingFields,
  MAX_HEADER_BYTES,
  messageIdOf,
  parseHeaderFields,
  readHeaderBlock,
  splitHeaderBlock,
  splitHeaderBlockWithin,
  splitMessage,
  withoutFields,
} from '../src/index.ts';

/** One byte per chunk: the worst case for finding the blank line. */
const byteByByte = (text: string) => Readable.from([...Buffer.from(text, 'latin1')].map((b) => Buffer.from([b])));

describe('finding the end of the header block', () => {
  const cases: Array<[string, string, { header: string; body: string } | undefined]> = [
    ['with CRLF line ends', 'A: 1\r\nB: 2\r\n\r\nbody', { header: 'A: 1\r\nB: 2\r\n', body: 'body' }],
    ['with bare LF line ends', 'A: 1\nB: 2\n\nbody', { header: 'A: 1\nB: 2\n', body: 'body' }],
    ['at a CRLF blank line after an LF line', 'A: 1\n\r\nbody', { header: 'A: 1\n', body: 'body' }],
    ['at an LF blank line after a CRLF line', 'A: 1\r\n\nbody', { header: 'A: 1\r\n', body: 'body' }],
    ['at the first blank line, not a later one', 'A: 1\r\n\r\nx\r\n\r\ny', { header: 'A: 1\r\n', body: 'x\r\n\r\ny' }],
    ['at once when the message starts with a blank line', '\r\nA: 1\r\n\r\nx', { header: '', body: 'A: 1\r\n\r\nx' }],
    ['at once when the message starts with a bare LF', '\nbody', { header: '', body: 'body' }],
    ['with an empty body', 'A: 1\r\n\r\n', { header: 'A: 1\r\n', body: '' }],
    ['nowhere while no blank line has come', 'A: 1\r\nB: 2\r\n', undefined],
    ['nowhere while the blank line is half there', 'A: 1\r\n\r', undefined],
    ['nowhere in a lone CR', '\r', undefined],
  ];
  for (const [name, text, expected] of cases) {
    it(`finds it ${name}`, () => {
      const bytes = Buffer.from(text, 'latin1');
      const end = findHeaderEnd(bytes);
      if (!expected) return assert.equal(end, undefined);
      assert.ok(end);
      assert.equal(bytes.subarray(0, end.headerLength).toString('latin1'), expected.header);
      assert.equal(bytes.subarray(end.bodyStart).toString('latin1'), expected.body);
    });
  }
});

describe('parsing header fields', () => {
  it('unfolds folded values, keeps the name as written and the raw lines exactly', () => {
    const fields = parseHeaderFields('Subject: a\r\n folded\r\n\tand tabbed\r\nX-Empty:\r\n');
    assert.deepEqual(fields, [
      { name: 'Subject', key: 'subject', value: 'a folded\tand tabbed', raw: 'Subject: a\r\n folded\r\n\tand tabbed' },
      { name: 'X-Empty', key: 'x-empty', value: '', raw: 'X-Empty:' },
    ]);
  });

  it('reads bare LF line ends like CRLF and writes the fields back with CRLF', () => {
    const fields = parseHeaderFields('To: a@x.example\nSubject: b\n c\n');
    assert.deepEqual(
      fields.map((f) => [f.key, f.value]),
      [
        ['to', 'a@x.example'],
        ['subject', 'b c'],
      ],
    );
    assert.equal(headerBytes(fields).toString('latin1'), 'To: a@x.example\r\nSubject: b\r\n c\r\n');
  });

  it('drops lines that are not fields and a continuation with nothing to continue', () => {
    const fields = parseHeaderFields(' stray continuation\r\nnot a field\r\nBad Name: x\r\n: no name\r\nOk: y');
    assert.deepEqual(
      fields.map((f) => f.name),
      ['Ok'],
    );
  });

  it('reads a field with white space before its colon (obs-syntax) as that field, the name trimmed', () => {
    // Mail clients show `From : x` as From: dropped, it was a second From no check saw.
    const fields = parseHeaderFields('From: a@x.example\r\nFrom : boss@y.example\r\nbcc\t: z@y.example\r\n');
    assert.deepEqual(
      fields.map((f) => [f.name, f.key, f.value]),
      [
        ['From', 'from', 'a@x.example'],
        ['From', 'from', 'boss@y.example'],
        ['bcc', 'bcc', 'z@y.example'],
      ],
    );
    assert.equal(fields[1]?.raw, 'From : boss@y.example');
  });

  // Every inbound message's header block is read with this (ingest, encrypt, the portal), up to MAX_HEADER_BYTES; the
  // blanks before a colon were rescanned from each of them: a line of 1 MiB took minutes.
  it('reads a line of 1 MiB of blanks before a colon, or without a colon, in one pass', () => {
    const blanks = ' \t'.repeat(MAX_HEADER_BYTES / 2);
    assert.deepEqual(parseHeaderFields(`a${blanks}b: x\r\nc${blanks}d\r\nOk${blanks}: y`), [
      { name: 'Ok', key: 'ok', value: 'y', raw: `Ok${blanks}: y` },
    ]);
    assert.deepEqual(
      parseHeaderFields('X \t : 1\r\nY:2\r\nZ  \t\r\n\t: 3').map((f) => [f.name, f.value]),
      [
        ['X', '1'],
        ['Y', '2'],
      ],
    );
  });

  it('gives no fields for an empty header block', () => {
    assert.deepEqual(parseHeaderFields(''), []);
    assert.deepEqual(parseHeaderFields('\r\n'), []);
  });

  it('passes 8-bit text through byte for byte', () => {
    const raw = Buffer.from('Subject: Grüße aus Köln\r\n', 'utf8');
    const fields = parseHeaderFields(raw.toString('latin1'));
    assert.equal(Buffer.from(fields[0]?.value ?? '', 'latin1').toString('utf8'), 'Grüße aus Köln');
    assert.ok(headerBytes(fields).equals(raw));
  });
});

describe('getting and removing fields', () => {
  const fields = parseHeaderFields(
    'Content-Type: text/plain\r\nX-SMGW-Decrypted: smime\r\nx-smgw-decrypted: pgp\r\nTo: a',
  );

  it('finds the first field of a name in any case', () => {
    assert.equal(headerValue(fields, 'CONTENT-TYPE'), 'text/plain');
    assert.equal(headerValue(fields, 'x-smgw-decrypted'), 'smime');
    assert.equal(headerValue(fields, 'subject'), undefined);
  });

  it('removes every field of the names given, in any case', () => {
    assert.deepEqual(
      withoutFields(fields, ['X-SMGW-Decrypted']).map((f) => f.name),
      ['Content-Type', 'To'],
    );
  });
});

describe('splitting a message held in memory', () => {
  it('returns the fields and the body after the blank line', () => {
    const { fields, body } = splitHeaderBlock(Buffer.from('Content-Type: text/plain\r\n\r\nHallo\r\n'));
    assert.equal(headerValue(fields, 'content-type'), 'text/plain');
    assert.equal(body.toString(), 'Hallo\r\n');
  });

  it('treats an entity without a blank line as all header with an empty body', () => {
    const { fields, body } = splitHeaderBlock(Buffer.from('Content-Type: text/plain\r\n'));
    assert.equal(fields.length, 1);
    assert.equal(body.length, 0);
  });

  it('treats an entity that starts with a blank line as all body', () => {
    const { fields, body } = splitHeaderBlock(Buffer.from('\r\nContent-Type: text/plain\r\n'));
    assert.equal(fields.length, 0);
    assert.equal(body.toString(), 'Content-Type: text/plain\r\n');
  });
});

describe("splitting an entity within a walk's budget of header lines", () => {
  /** A top header block as long as real mail has them: DKIM and ARC chains, a long Received list, 300 fields. */
  const longRealHeader = () => {
    const lines: string[] = [];
    for (let i = 0; i < 40; i++)
      lines.push(
        `Received: from relay${i}.example.org (relay${i}.example.org [192.0.2.${i}])`,
        `\tby mx.example.net with ESMTPS id ${i}; Mon, 1 Jan 2026 00:00:00 +0000`,
      );
    for (let i = 0; i < 20; i++)
      lines.push(
        `DKIM-Signature: v=1; a=rsa-sha256; d=example${i}.org; s=s1;`,
        `\th=from:to:subject:date; bh=${'A'.repeat(44)};`,
        `\tb=${'B'.repeat(340)}`,
      );
    for (let i = 0; i < 200; i++) lines.push(`X-Field-${i}: ${i}`);
    return `${lines.join('\r\n')}\r\nSubject: x\r\n\r\nbody`;
  };

  it('reads a long real header block and takes its lines from the budget', () => {
    const budget = headerBudget();
    const { fields, body } = splitHeaderBlockWithin(Buffer.from(longRealHeader(), 'latin1'), budget);
    assert.equal(fields.length, 40 + 20 + 200 + 1);
    assert.equal(body.toString(), 'body');
    assert.equal(budget.linesLeft, 100_000 - (80 + 60 + 200 + 1));
    assert.deepEqual(
      splitHeaderBlockWithin(Buffer.from(longRealHeader(), 'latin1'), budget),
      splitHeaderBlock(Buffer.from(longRealHeader(), 'latin1')),
    );
  });

  it('counts a last line without its line break, and none for an entity that starts with a blank line', () => {
    const budget = headerBudget(10);
    assert.equal(splitHeaderBlockWithin(Buffer.from('A: 1\r\nB: 2'), budget).fields.length, 2);
    assert.equal(budget.linesLeft, 8);
    assert.equal(splitHeaderBlockWithin(Buffer.from('\r\nA: 1\r\n'), budget).fields.length, 0);
    assert.equal(budget.linesLeft, 8);
  });

  it('refuses a block of more lines than are left, before parsing it, and takes none of them', () => {
    const budget = headerBudget(1000);
    splitHeaderBlockWithin(Buffer.from(`${'X-A: b\r\n'.repeat(600)}\r\n`), budget);
    // 4 million lines of 31 MB: parsing them took 2 s; refused after the 401st line break.
    const huge = Buffer.from(`${'X-A: b\r\n'.repeat(4_000_000)}\r\nbody`, 'latin1');
    assert.throws(
      () => splitHeaderBlockWithin(huge, budget),
      (error: unknown) => {
        assert.ok(error instanceof HeaderBudgetError);
        assert.equal(error.code, 'MIME_HEADER_BUDGET_EXCEEDED');
        assert.equal(error.message, 'more than 400 header lines left to read');
        return true;
      },
    );
    assert.equal(budget.linesLeft, 400);
    // Folded lines count as the lines they are: one field of 401 lines is as much work.
    assert.throws(
      () => splitHeaderBlockWithin(Buffer.from(`X-A: b${'\r\n b'.repeat(400)}\r\n\r\n`), budget),
      HeaderBudgetError,
    );
    assert.equal(splitHeaderBlockWithin(Buffer.from(`X-A: b${'\r\n b'.repeat(399)}\r\n\r\n`), budget).fields.length, 1);
    assert.equal(budget.linesLeft, 0);
  });

  it('refuses a block longer than its bound in bytes, one line of it or many, with or without a blank line after', () => {
    const budget = headerBudget(100_000, 1024);
    const line = (length: number) => `X-A: ${'b'.repeat(length - 7)}\r\n`;
    assert.equal(splitHeaderBlockWithin(Buffer.from(`${line(1024)}\r\nbody`), budget).fields.length, 1);
    for (const bytes of [
      `${line(1025)}\r\nbody`,
      line(1025),
      'b'.repeat(31 * 1024 * 1024),
      `${line(512)}${line(513)}\r\n`,
    ]) {
      assert.throws(() => splitHeaderBlockWithin(Buffer.from(bytes), budget), /a header block longer than 1024 bytes/);
    }
    assert.equal(budget.linesLeft, 100_000 - 1);
  });
});

describe('splitting a message stream at its header block', () => {
  it('returns the fields and streams the body, whatever the chunk boundaries', async () => {
    const raw = 'Subject: a\r\n folded\r\nContent-Type: text/plain\r\n\r\nbody line\r\n\r\nmore\r\n';
    const { fields, body } = await splitMessage(byteByByte(raw));
    assert.deepEqual(
      fields.map((f) => [f.key, f.value]),
      [
        ['subject', 'a folded'],
        ['content-type', 'text/plain'],
      ],
    );
    assert.equal((await buffer(body)).toString(), 'body line\r\n\r\nmore\r\n');
  });

  it('treats a message without a blank line as all header', async () => {
    const { fields, body } = await splitMessage(Readable.from([Buffer.from('Subject: only\r\n')]));
    assert.equal(fields[0]?.value, 'only');
    assert.equal((await buffer(body)).length, 0);
  });

  it('gives a header block with no body an empty body', async () => {
    const { fields, body } = await splitMessage(Readable.from([Buffer.from('Subject: x\r\n\r\n')]));
    assert.equal(fields.length, 1);
    assert.equal((await buffer(body)).length, 0);
  });

  it('gives an empty header block no fields and the rest as body', async () => {
    const { fields, body } = await splitMessage(Readable.from([Buffer.from('\r\nonly body\r\n')]));
    assert.deepEqual(fields, []);
    assert.equal((await buffer(body)).toString(), 'only body\r\n');
  });

  it('refuses a header block longer than the bound and releases the source', async () => {
    const source = Readable.from(Array.from({ length: 50 }, () => Buffer.from(`X-Filler: ${'x'.repeat(90)}\r\n`)));
    await assert.rejects(splitMessage(source, 1000), (err: unknown) => {
      assert.ok(err instanceof HeaderBlockError);
      assert.equal(err.code, 'MIME_HEADER_TOO_LARGE');
      return true;
    });
    assert.equal(source.destroyed, true);
  });

  it('refuses a header block longer than the bound that ends in the chunk already read', async () => {
    // One chunk holds the whole oversized header and its blank line: the bound holds all the same.
    const header = Array.from({ length: 50 }, () => `X-Filler: ${'x'.repeat(90)}\r\n`).join('');
    const source = Readable.from([Buffer.from(`${header}\r\nbody\r\n`)]);
    await assert.rejects(splitMessage(source, 1000), (err: unknown) => {
      assert.ok(err instanceof HeaderBlockError);
      assert.equal(err.code, 'MIME_HEADER_TOO_LARGE');
      return true;
    });
    assert.equal(source.destroyed, true);
  });

  it('releases the source when the body is destroyed unread', async () => {
    const source = Readable.from([Buffer.from('Subject: a\r\n\r\n'), Buffer.from('body')]);
    const { body } = await splitMessage(source);
    body.destroy();
    await new Promise((resolve) => body.once('close', resolve));
    assert.equal(source.destroyed, true);
  });
});

describe('reading a bounded copy of the header block', () => {
  it('stops at the blank line', async () => {
    const headers = await readHeaderBlock(Readable.from([Buffer.from('Subject: a\r\nFrom: b\r\n\r\nbody\r\n')]));
    assert.equal(headers.toString(), 'Subject: a\r\nFrom: b\r\n');
  });

  it('finds the blank line across chunk boundaries', async () => {
    const headers = await readHeaderBlock(Readable.from([Buffer.from('Subject: a\r\n\r'), Buffer.from('\nbody')]));
    assert.equal(headers.toString(), 'Subject: a\r\n');
  });

  it('keeps bare LF line ends as they are', async () => {
    const headers = await readHeaderBlock(byteByByte('Subject: a\nFrom: b\n\nbody\n'));
    assert.equal(headers.toString(), 'Subject: a\nFrom: b\n');
  });

  it('cuts an endless header block at its last whole line and stops reading', async () => {
    const line = Buffer.from(`X-Filler: ${'x'.repeat(90)}\r\n`);
    const source = Readable.from(Array.from({ length: 100 }, () => line));
    const headers = await readHeaderBlock(source, 1000);
    assert.ok(headers.length <= 1000);
    assert.ok(headers.toString().endsWith('\r\n'));
    assert.equal(source.destroyed, true);
  });

  it('returns all of a short message that has no blank line', async () => {
    const headers = await readHeaderBlock(Readable.from([Buffer.from('Subject: a\r\n')]));
    assert.equal(headers.toString(), 'Subject: a\r\n');
  });
});

describe('the Message-ID of a header block', () => {
  const cases: Array<[string, string, string | undefined]> = [
    ['a plain field', 'Subject: x\r\nMessage-ID: <a@b.example>\r\n', '<a@b.example>'],
    ['a folded field in another case', 'message-id:\r\n <a@b.example>\r\n', '<a@b.example>'],
    ['the first well-formed of two', 'Message-ID: garbage\r\nMessage-Id: <c@d.example>\r\n', '<c@d.example>'],
    ['a field with a comment after it', 'Message-ID: <a@b.example> (copy)\r\n', '<a@b.example>'],
    ['no field', 'Subject: x\r\n', undefined],
    ['an id with white space in it', 'Message-ID: <a b@c.example>\r\n', undefined],
  ];
  for (const [name, block, expected] of cases) {
    it(`is ${expected ?? 'nothing'} for ${name}`, () => {
      assert.equal(messageIdOf(Buffer.from(block)), expected);
    });
  }
});

describe('identifyingFields', () => {
  it('keeps the fields that identify a message, whole and folded as written, in their order, and nothing else', () => {
    const block = Buffer.from(
      [
        'Received: from mx.extern.example by smgw.example',
        'X-Offer: Buy cheap pills',
        'From: Fremder <x@extern.example>',
        'Subject: Antrag',
        '\tauf zwei Zeilen',
        'Message-ID: <m1@extern.example>',
        'List-Unsubscribe: <https://spam.example>',
        '',
      ].join('\r\n'),
    );
    assert.equal(
      identifyingFields(block).toString('latin1'),
      'From: Fremder <x@extern.example>\r\nSubject: Antrag\r\n\tauf zwei Zeilen\r\nMessage-ID: <m1@extern.example>\r\n',
    );
  });

  it('leaves out a field that would pass the bound, and keeps the smaller ones after it', () => {
    const block = Buffer.from(`To: ${'a@extern.example, '.repeat(1000)}\r\nSubject: Antrag\r\nDate: x\r\n`);
    assert.equal(identifyingFields(block, 100).toString('latin1'), 'Subject: Antrag\r\nDate: x\r\n');
    assert.ok(identifyingFields(block).length <= 8 * 1024);
  });
});
