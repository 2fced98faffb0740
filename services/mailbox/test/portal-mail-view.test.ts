import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isoDate } from '../src/message-headers.ts';
import { summarizeMessage } from '../src/message-summary.ts';
import { MimeStructureError } from '../src/mime-structure.ts';
import { attachmentDisposition, downloadContentType, safeFilename } from '../src/portal/attachment-names.ts';
import { MAX_OPEN_ELEMENTS } from '../src/portal/message-html.ts';
import { readMessageAttachment, readMessageView } from '../src/portal/message-view.ts';
import { attachmentPart, base64Lines, htmlPart, message, multipart, type Part, textPart } from './mime-fixtures.ts';

const PNG = Buffer.from('89504e470d0a1a0a0000000d494844520000000100000001', 'hex');

describe('the message page view of a message', () => {
  it('decodes the header fields to text and keeps markup in names as text', async () => {
    const raw = message(
      {
        from: '=?utf-8?q?J=C3=BCrgen_M=C3=BCller_=3Cb=3Eamt=3C/b=3E?= <juergen@behoerde.example>',
        to: '"<img src=x onerror=alert(1)>" <buerger@example.org>, zweite@example.org',
        cc: 'Kopie <kopie@example.org>',
        subject: '=?iso-8859-1?q?Ihr_Antrag_vom_M=E4rz?= =?utf-8?b?4oCUIGVybGVkaWd0?=',
        date: 'Tue, 01 Jul 2025 10:00:00 +0200 (CEST)',
      },
      textPart('Sehr geehrte Damen und Herren,\r\n\r\n<script>bleibt Text</script>\r\n'),
    );
    const view = await readMessageView(raw);
    assert.deepEqual(view.from, [{ name: 'Jürgen Müller <b>amt</b>', address: 'juergen@behoerde.example' }]);
    assert.deepEqual(view.to, [
      { name: '<img src=x onerror=alert(1)>', address: 'buerger@example.org' },
      { name: '', address: 'zweite@example.org' },
    ]);
    assert.deepEqual(view.cc, [{ name: 'Kopie', address: 'kopie@example.org' }]);
    assert.equal(view.subject, 'Ihr Antrag vom März— erledigt');
    assert.equal(view.date, '2025-07-01T08:00:00.000Z');
    assert.equal(view.text, 'Sehr geehrte Damen und Herren,\n\n<script>bleibt Text</script>\n');
    assert.equal(view.html, undefined);
    assert.deepEqual(view.attachments, []);
  });

  it('drops bidi overrides and control characters from names and subjects', async () => {
    const raw = message(
      { from: '=?utf-8?b?QW10IOKArmxpdmUuZXhl?= <a@b.example>', subject: '=?utf-8?q?Rechnung=E2=80=AEfdp.exe=07?=' },
      textPart('x'),
    );
    const view = await readMessageView(raw);
    assert.equal(view.from[0]?.name, 'Amt live.exe');
    assert.equal(view.subject, 'Rechnungfdp.exe');
  });

  it('reads a missing or broken Date as no date', async () => {
    assert.equal((await readMessageView(message({ date: 'gestern' }, textPart('x')))).date, null);
    assert.equal((await readMessageView(message({ date: '' }, textPart('x')))).date, null);
  });

  it('reads a Date with a comment, and one of 200,000 spaces in one pass (the summary reads it on arrival)', () => {
    assert.equal(isoDate('Mon, 1 Jan 2024 10:00:00 +0100 (CET) '), '2024-01-01T09:00:00.000Z');
    // A run of white space not followed by "(" was rescanned from each of its characters: 40,000 took 0.9 s.
    assert.equal(isoDate(`Mon, 1 Jan 2024 10:00:00 +0100${' '.repeat(200_000)}x`), null);
    assert.equal(isoDate(`Mon, 1 Jan 2024 10:00:00 +0100${' '.repeat(200_000)}`), '2024-01-01T09:00:00.000Z');
  });

  it('sanitises the HTML body and shows inline images of the message', async () => {
    const raw = message(
      {},
      multipart('alternative', [
        textPart('Text'),
        multipart('related', [
          htmlPart('<p onclick="x()">Hallo <img src="cid:logo@amt" alt="Logo"><img src="https://t.example/p.gif"></p>'),
          {
            headers: ['Content-Type: image/png', 'Content-Transfer-Encoding: base64', 'Content-ID: <logo@amt>'],
            body: base64Lines(PNG),
          },
        ]),
      ]),
    );
    const view = await readMessageView(raw);
    assert.equal(view.text, 'Text');
    assert.deepEqual(view.html, {
      html: `<p>Hallo <img alt="Logo" src="data:image/png;base64,${PNG.toString('base64')}" /><span></span></p>`,
      remoteContentBlocked: true,
    });
    assert.deepEqual(view.attachments, [
      { index: 0, filename: 'anhang-1', contentType: 'image/png', size: PNG.length },
    ]);
  });

  it('lists attachments with safe names, and gives each one back by its index', async () => {
    const pdf = Buffer.from('%PDF-1.4 bescheid');
    const html = Buffer.from('<script>alert(1)</script>');
    const raw = message(
      {},
      multipart('mixed', [
        textPart('Anbei.'),
        attachmentPart('application/pdf', '"Bescheid 2025.pdf"', pdf),
        attachmentPart('text/html', '"=?utf-8?q?../../etc/passwd=5Cevil.html?="', html),
        attachmentPart('application/octet-stream', '"=?utf-8?q?Rechnung=E2=80=AEfdp.exe?="', Buffer.from('MZ')),
      ]),
    );
    const view = await readMessageView(raw);
    assert.deepEqual(
      view.attachments.map(({ filename, contentType, size }) => ({ filename, contentType, size })),
      [
        { filename: 'Bescheid 2025.pdf', contentType: 'application/pdf', size: pdf.length },
        { filename: '_.._etc_passwd_evil.html', contentType: 'text/html', size: html.length },
        { filename: 'Rechnungfdp.exe', contentType: 'application/octet-stream', size: 2 },
      ],
    );
    const second = await readMessageAttachment(raw, 1);
    assert.equal(second?.content.toString(), html.toString());
    assert.equal(second?.filename, '_.._etc_passwd_evil.html');
    assert.equal(await readMessageAttachment(raw, 3), undefined);
    assert.equal(await readMessageAttachment(raw, -1), undefined);
    assert.equal(await readMessageAttachment(raw, Number.NaN), undefined);
  });

  it('shows the text instead of HTML nested deeper than the page renders', async () => {
    const deep = `<p>${'<span>'.repeat(MAX_OPEN_ELEMENTS + 1)}Hallo</p>`;
    const view = await readMessageView(message({}, multipart('alternative', [textPart('Hallo'), htmlPart(deep)])));
    assert.equal(view.html, undefined);
    assert.equal(view.htmlTooLong, true);
    assert.equal(view.text, 'Hallo');
  });

  it('refuses a message nested deeper than the limit, and one with too many parts', async () => {
    let part: Part = textPart('innen');
    for (let i = 0; i < 40; i++) part = multipart('mixed', [part], `d${i}`);
    await assert.rejects(readMessageView(message({}, part)), MimeStructureError);

    const many = multipart(
      'mixed',
      Array.from({ length: 600 }, (_, i) => textPart(`teil ${i}`)),
      'many',
    );
    await assert.rejects(readMessageView(message({}, many)), MimeStructureError);
  });
});

describe('the sealed summary of a message', () => {
  it('has the header fields as text and counts what the message page lists as attachments', async () => {
    const raw = message(
      {
        from: '"Amt, Abteilung 2" <amt@behoerde.example>',
        to: 'buerger@example.org',
        cc: 'kopie@example.org',
        subject: '=?utf-8?q?Gr=C3=BC=C3=9Fe?=',
      },
      multipart('mixed', [
        multipart('alternative', [textPart('t'), htmlPart('<p>h</p>')]),
        attachmentPart('application/pdf', 'a.pdf', Buffer.from('%PDF')),
        { headers: ['Content-Type: image/png', 'Content-Disposition: inline'], body: 'x' },
        { headers: ['Content-Type: text/plain', 'Content-Disposition: attachment; filename=b.txt'], body: 'b' },
        { headers: ['Content-Disposition: inline'], body: 'a part without a type' },
      ]),
    );
    const summary = await summarizeMessage(raw);
    assert.deepEqual(summary, {
      from: 'Amt, Abteilung 2 <amt@behoerde.example>',
      to: 'buerger@example.org',
      subject: 'Grüße',
      date: '2025-07-01T08:00:00.000Z',
      // pdf, inline png, text with disposition attachment; a part without a type is text (RFC 2045 §5.2).
      attachments: 3,
    });
    assert.equal((await readMessageView(raw)).attachments.length, summary.attachments);
  });

  it('counts what mailparser counts for embedded messages', async () => {
    const inner = message(
      { subject: 'weitergeleitet' },
      multipart('mixed', [textPart('innen'), attachmentPart('application/pdf', 'i.pdf', Buffer.from('%PDF'))]),
    );
    const raw = message(
      {},
      multipart('mixed', [
        textPart('außen'),
        { headers: ['Content-Type: message/rfc822', 'Content-Disposition: inline'], body: inner },
        { headers: ['Content-Type: message/rfc822', 'Content-Disposition: attachment; filename=f.eml'], body: inner },
      ]),
    );
    const summary = await summarizeMessage(raw);
    assert.equal((await readMessageView(raw)).attachments.length, summary.attachments);
    assert.equal(summary.attachments, 2);
  });

  it('summarises a 5 MB message from its headers and structure', async () => {
    const raw = message(
      { subject: 'Großer Anhang' },
      multipart('mixed', [
        textPart('x'),
        attachmentPart('application/zip', 'daten.zip', Buffer.alloc(5 * 1024 * 1024, 7)),
      ]),
    );
    assert.ok(raw.length > 5 * 1024 * 1024);
    const summary = await summarizeMessage(raw);
    assert.equal(summary.subject, 'Großer Anhang');
    assert.equal(summary.attachments, 1);
  });

  describe('a message whose top header names no parts: its one leaf, read from the header alone', () => {
    const table: Array<[string, Part, number]> = [
      ['text', textPart('Hallo'), 0],
      ['a PDF as the whole message', attachmentPart('application/pdf', 'a.pdf', Buffer.from('%PDF')), 1],
      [
        'text with disposition attachment',
        { headers: ['Content-Type: text/plain', 'Content-Disposition: attachment; filename=b.txt'], body: 'b' },
        1,
      ],
      ['inline html', { headers: ['Content-Type: text/html', 'Content-Disposition: inline'], body: '<p>h</p>' }, 0],
      ['an image without disposition', { headers: ['Content-Type: image/png'], body: 'x' }, 1],
      [
        'no Content-Type but a file name',
        { headers: ['Content-Disposition: inline; filename=daten.zip'], body: 'x' },
        1,
      ],
    ];
    for (const [what, part, attachments] of table) {
      it(`counts ${attachments} for ${what}, as the message page`, async () => {
        const raw = message({}, part);
        const summary = await summarizeMessage(raw);
        assert.equal(summary.attachments, attachments);
        assert.equal((await readMessageView(raw)).attachments.length, attachments);
      });
    }

    it('summarises a text message of 31 MB of bare line feeds', async () => {
      const raw = message(
        { subject: 'leer' },
        { headers: ['Content-Type: text/plain'], body: '\n'.repeat(31 * 1024 * 1024) },
      );
      assert.deepEqual(await summarizeMessage(raw), {
        from: 'Amt <amt@behoerde.example>',
        to: 'buerger@example.org',
        subject: 'leer',
        date: '2025-07-01T08:00:00.000Z',
        attachments: 0,
      });
    });

    it('still walks an inline attached message as the whole message', async () => {
      const inner = message(
        {},
        multipart('mixed', [textPart('innen'), attachmentPart('application/pdf', 'i.pdf', Buffer.from('%PDF'))]),
      );
      const raw = message(
        {},
        { headers: ['Content-Type: message/rfc822', 'Content-Disposition: inline'], body: inner },
      );
      const summary = await summarizeMessage(raw);
      assert.equal(summary.attachments, (await readMessageView(raw)).attachments.length);
    });
  });

  it('still has the headers of a message too complex to walk', async () => {
    let part: Part = attachmentPart('application/pdf', 'a.pdf', Buffer.from('%PDF'));
    for (let i = 0; i < 40; i++) part = multipart('mixed', [part], `d${i}`);
    const summary = await summarizeMessage(message({ subject: 'tief' }, part));
    assert.equal(summary.subject, 'tief');
    assert.equal(summary.attachments, 0);
  });

  it('reads a message that is all header', async () => {
    const summary = await summarizeMessage(Buffer.from('Subject: nur Kopf\r\nFrom: a@b.example'));
    assert.deepEqual(summary, { from: 'a@b.example', to: '', subject: 'nur Kopf', date: null, attachments: 0 });
  });
});

describe('attachment names and download headers', () => {
  const table: Array<[string, string | undefined, string]> = [
    ['an ordinary name', 'Bescheid.pdf', 'Bescheid.pdf'],
    ['path separators', '../../etc/passwd', '_.._etc_passwd'],
    ['a Windows path', 'C:\\Windows\\evil.exe', 'C__Windows_evil.exe'],
    ['quotes and a line break', 'a"b\r\nContent-Type: text/html.pdf', 'a_b Content-Type_ text_html.pdf'],
    ['a right-to-left override', 'rechnung\u202efdp.exe', 'rechnungfdp.exe'],
    ['a hidden file', '.htaccess', 'htaccess'],
    ['trailing dots and spaces', 'x.pdf. . ', 'x.pdf'],
    ['a reserved Windows name', 'CON.txt', '_CON.txt'],
    ['nothing left', ' ..\u0000 ', 'anhang-1'],
    ['no name', undefined, 'anhang-1'],
  ];
  for (const [what, name, expected] of table) {
    it(`makes ${what} safe`, () => assert.equal(safeFilename(name, 'anhang-1'), expected));
  }

  // A message page lists up to 500 parts: the trailing dots and spaces of each name (the 10,000 characters displayText
  // keeps) were looked for from each character of a run, 65 ms a name, half a minute a page.
  it('strips trailing dots and spaces of 500 names of 10,000 characters in one pass each', () => {
    assert.equal(safeFilename('a . .\t.x . .\u00a0', 'f'), 'a . . .x');
    for (let i = 0; i < 500; i++) {
      assert.equal(safeFilename(`a${'. '.repeat(5000)}x`, 'f'), 'a');
    }
  });

  it('cuts a very long name but keeps its extension', () => {
    const name = safeFilename(`${'ä'.repeat(500)}.pdf`, 'x');
    assert.equal([...name].length, 120);
    assert.ok(name.endsWith('ääää.pdf'));
  });

  it('writes Content-Disposition with an ASCII fallback and the UTF-8 name (RFC 6266, RFC 5987)', () => {
    assert.equal(
      attachmentDisposition("Bescheid März (final)'s.pdf"),
      `attachment; filename="Bescheid Marz (final)'s.pdf"; filename*=UTF-8''Bescheid%20M%C3%A4rz%20%28final%29%27s.pdf`,
    );
    assert.equal(
      attachmentDisposition('日本.txt'),
      `attachment; filename="__.txt"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt`,
    );
    assert.equal(
      attachmentDisposition('a;b%c.txt'),
      `attachment; filename="a_b_c.txt"; filename*=UTF-8''a%3Bb%25c.txt`,
    );
  });

  it('serves anything a browser could render actively as application/octet-stream', () => {
    for (const type of [
      'text/html',
      'application/xhtml+xml',
      'image/svg+xml',
      'text/xml',
      'application/xml',
      'application/javascript',
      'text/javascript',
      'text/css',
      'application/pdf',
      'text/plain',
      'multipart/x-mixed-replace',
      'application/x-unknown',
      'IMAGE/SVG+XML',
    ]) {
      assert.equal(downloadContentType(type), 'application/octet-stream', type);
    }
    assert.equal(downloadContentType('image/png'), 'image/png');
    assert.equal(downloadContentType('Application/Zip'), 'application/zip');
  });
});
