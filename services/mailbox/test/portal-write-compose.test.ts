// What the portal writes for a user, read back with mailparser: the gateway's header fields only, the user's input
// only as content, whatever they typed into the subject, the text or a file name.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { newMessageId } from '@smgw/envelope';
import { parseHeaderFields, splitHeaderBlock } from '@smgw/mime';
import { simpleParser } from 'mailparser';
import {
  attachmentContentType,
  checkSubject,
  composePortalMessage,
  MAX_FILENAME_CHARS,
  type PortalComposition,
  sanitizeFilename,
} from '../src/portal/compose.ts';
import { DRAFT_MAX_AGE_MS, draftTokenKey, newDraftToken, openDraftToken } from '../src/portal/draft-token.ts';
import { PortalWriteError } from '../src/portal/errors.ts';
import { quoteOriginal, readReplyContext, replySubject } from '../src/portal/reply-context.ts';
import { message, multipart, textPart } from './mime-fixtures.ts';

const DATE = new Date('2026-03-02T10:00:00Z');

function composition(overrides: Partial<PortalComposition> = {}): PortalComposition {
  return {
    from: 'erika@buerger.example',
    to: ['post@behoerde.example'],
    subject: 'Antrag auf Wohngeld',
    text: 'Sehr geehrte Damen und Herren,\nanbei mein Antrag.\n',
    attachments: [],
    messageId: newMessageId(DATE.getTime()),
    hostname: 'smgw.test',
    date: DATE,
    ...overrides,
  };
}

/** The names of the top-level header fields, lower case, in order. */
function fieldNames(raw: Buffer): string[] {
  return splitHeaderBlock(raw).fields.map((f) => f.key);
}

const refuses = (code: string) => (err: unknown) => err instanceof PortalWriteError && err.code === code;

describe('composePortalMessage', () => {
  it('writes From, To, Subject, Date and a Message-ID of the gateway; the text as UTF-8 quoted-printable', async () => {
    const input = composition({ subject: 'Größe des Grundstücks', text: 'Grüße aus Köln\nZeile zwei' });
    const raw = await composePortalMessage(input);
    const parsed = await simpleParser(raw);
    assert.equal(parsed.from?.value[0]?.address, 'erika@buerger.example');
    assert.deepEqual(
      [parsed.to].flat().flatMap((to) => to?.value.map((v) => v.address)),
      ['post@behoerde.example'],
    );
    assert.equal(parsed.subject, 'Größe des Grundstücks');
    assert.equal(parsed.messageId, `<${input.messageId}@smgw.test>`);
    assert.equal(parsed.date?.toISOString(), DATE.toISOString());
    assert.equal(parsed.text?.trim(), 'Grüße aus Köln\nZeile zwei');
    assert.equal(parsed.headers.get('content-transfer-encoding'), 'quoted-printable');
    assert.deepEqual(parsed.headers.get('content-type'), { value: 'text/plain', params: { charset: 'utf-8' } });
    assert.equal(/[^\r]\n/.test(raw.toString('latin1')), false, 'CRLF only');
    assert.deepEqual(fieldNames(raw).sort(), [
      'content-transfer-encoding',
      'content-type',
      'date',
      'from',
      'message-id',
      'mime-version',
      'subject',
      'to',
    ]);
  });

  it('threads a reply with In-Reply-To and References, dropping malformed ids', async () => {
    const raw = await composePortalMessage(
      composition({
        replyTo: { messageId: '<bescheid-1@behoerde.example>', references: ['<a@x.example>', 'kaputt', '<b c@x>'] },
      }),
    );
    const parsed = await simpleParser(raw);
    assert.equal(parsed.inReplyTo, '<bescheid-1@behoerde.example>');
    assert.deepEqual(parsed.references, ['<a@x.example>', '<bescheid-1@behoerde.example>']);
  });

  it('attaches files as base64 with a cleaned name and a type from its own table, whatever the browser said', async () => {
    const pdf = Buffer.from('%PDF-1.4\n%âãÏÓ\n1 0 obj\n');
    const exe = randomBytes(64);
    const raw = await composePortalMessage(
      composition({
        attachments: [
          { filename: 'C:\\Users\\erika\\Antrag.PDF', content: pdf },
          { filename: 'tool.exe', content: exe },
          { filename: 'Bescheinigung 2026.odt', content: Buffer.from('odt') },
        ],
      }),
    );
    const parsed = await simpleParser(raw);
    assert.deepEqual(
      parsed.attachments.map((a) => [a.filename, a.contentType, a.contentDisposition]),
      [
        ['Antrag.PDF', 'application/pdf', 'attachment'],
        ['tool.exe', 'application/octet-stream', 'attachment'],
        ['Bescheinigung 2026.odt', 'application/vnd.oasis.opendocument.text', 'attachment'],
      ],
    );
    assert.deepEqual(parsed.attachments[0]?.content, pdf);
    assert.deepEqual(parsed.attachments[1]?.content, exe);
  });

  it('refuses a subject with a line break: no header field can be smuggled in', async () => {
    for (const subject of [
      'Antrag\r\nX-SMGW-Signature: TOTAL_PASSED',
      'Antrag\nAuthentication-Results: smgw.test; auth=pass',
      'Antrag\rBcc: x@extern.example',
      'Antrag\u2028Received: from evil',
      'Antrag\u0000',
    ]) {
      await assert.rejects(composePortalMessage(composition({ subject })), refuses('SUBJECT_LINE_BREAK'), subject);
    }
  });

  it('sends an encoded-word typed into the subject as text: the agency reads what was typed, not what it decodes to', async () => {
    const word = (text: string) => `=?utf-8?b?${Buffer.from(text).toString('base64')}?=`;
    for (const subject of [
      word('Antrag\r\nX-SMGW-Signature: TOTAL_PASSED'),
      `Rechnung ${word('\u202Efdp.exe')} bitte`,
      '=?utf-8?q?Antrag=0D=0AAuthentication-Results:_smgw.test;_auth=pass?=',
      `Größe ${word('\u202E')}`,
      `${'Sehr langer Betreff '.repeat(8)}${word('x')}`,
    ]) {
      const raw = await composePortalMessage(composition({ subject }));
      const parsed = await simpleParser(raw);
      assert.equal(parsed.subject, subject, subject);
      assert.equal(/[^\r]\n|\r[^\n]/.test(raw.toString('latin1')), false, 'CRLF only');
    }
    // A subject without `=?` goes as before (ASCII as it is).
    const plain = await composePortalMessage(composition({ subject: 'Antrag a=b? ?=' }));
    assert.match(plain.toString('latin1'), /\r\nSubject: Antrag a=b\? \?=\r\n/);
  });

  it('refuses an empty or overlong subject and an empty message', async () => {
    await assert.rejects(composePortalMessage(composition({ subject: '  \t ' })), refuses('SUBJECT_MISSING'));
    await assert.rejects(composePortalMessage(composition({ subject: 'x'.repeat(251) })), refuses('SUBJECT_TOO_LONG'));
    await assert.rejects(
      composePortalMessage(composition({ text: ' \n ', attachments: [] })),
      refuses('MESSAGE_EMPTY'),
    );
    await assert.rejects(composePortalMessage(composition({ to: [] })), refuses('NO_RECIPIENT'));
  });

  it('keeps what the text says in the body, even lines that look like header fields', async () => {
    const text =
      'Hallo\r\n\r\nX-SMGW-Signature: TOTAL_PASSED\r\nAuthentication-Results: smgw.test; auth=pass\r\n.\r\nEnde';
    const raw = await composePortalMessage(composition({ text }));
    const names = fieldNames(raw);
    assert.equal(names.includes('x-smgw-signature'), false);
    assert.equal(names.includes('authentication-results'), false);
    const parsed = await simpleParser(raw);
    assert.match(parsed.text ?? '', /X-SMGW-Signature: TOTAL_PASSED/);
  });

  it('neutralises header injection in a file name', async () => {
    const raw = await composePortalMessage(
      composition({
        attachments: [
          {
            filename: 'a.pdf"\r\nX-SMGW-Signature: TOTAL_PASSED\r\nContent-Type: text/html',
            content: Buffer.from('x'),
          },
        ],
      }),
    );
    const parsed = await simpleParser(raw);
    assert.equal(parsed.attachments.length, 1);
    assert.equal(parsed.attachments[0]?.filename?.includes('\n'), false);
    // The type the part declares (mailparser would guess one from the name).
    assert.match(raw.toString('latin1'), /\r\nContent-Type: application\/octet-stream; name=html\r\n/);
    // Every header field of every part is one the composer wrote.
    const block = raw.toString('latin1');
    const partHeaders = block.split(/\r\n--/).map((part) => parseHeaderFields(part.split('\r\n\r\n')[0] ?? ''));
    for (const fields of partHeaders) {
      for (const field of fields) {
        assert.equal(field.key.startsWith('x-smgw'), false, field.raw);
      }
    }
  });
});

describe('sanitizeFilename', () => {
  const cases: [string, string][] = [
    ['../../etc/passwd', 'passwd'],
    ['C:\\Windows\\system32\\evil.dll', 'evil.dll'],
    ['rechnung\u202Efdp.exe', 'rechnungfdp.exe'],
    ['a\r\nb.txt', 'a b.txt'],
    ['wer?was*wo:"<>|.pdf', 'wer_was_wo_____.pdf'],
    ['  ...versteckt.txt. ', 'versteckt.txt'],
    ['CON.txt', '_CON.txt'],
    ['nul', '_nul'],
    ['', 'anhang'],
    ['...', 'anhang'],
    ['Übersicht Größe.pdf', 'Übersicht Größe.pdf'],
    // Invisible formatting (zero-width, word joiner, Arabic letter mark, interlinear annotations) goes too …
    ['Re\u200bch\u200cnu\u200dng\u2060\u061c\ufff9.pdf', 'Rechnung.pdf'],
    // … and blank look-alikes that are no white space to a regex count as spaces: padding cannot push the real
    // extension out of sight.
    [`Rechnung.pdf${'\u2800'.repeat(60)}${'\u3164'.repeat(30)}\u115f\u1160\uffa0.exe`, 'Rechnung.pdf .exe'],
  ];
  for (const [input, expected] of cases) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () => {
      assert.equal(sanitizeFilename(input), expected);
    });
  }

  it('cuts long names and keeps the extension', () => {
    const name = sanitizeFilename(`${'x'.repeat(500)}.pdf`);
    assert.equal([...name].length, MAX_FILENAME_CHARS);
    assert.ok(name.endsWith('.pdf'));
  });

  it('types by extension only, else application/octet-stream', () => {
    assert.equal(attachmentContentType('scan.JPG'), 'image/jpeg');
    assert.equal(attachmentContentType('signatur.p7s'), 'application/pkcs7-signature');
    assert.equal(attachmentContentType('seite.html'), 'application/octet-stream');
    assert.equal(attachmentContentType('bild.svg'), 'application/octet-stream');
    assert.equal(attachmentContentType('ohne-endung'), 'application/octet-stream');
  });
});

describe('checkSubject', () => {
  it('drops invisible and control characters and turns tabs into spaces', () => {
    assert.equal(checkSubject(' Antrag\t2026\u202E\u0007 '), 'Antrag 2026');
    assert.equal(checkSubject('An\u200btrag\u061c \u2060 2026\ufffb'), 'Antrag 2026');
  });
});

describe('the original of a reply', () => {
  const original = Buffer.from(
    [
      'From: Sachbearbeitung <sb@behoerde.example>',
      'Reply-To: angreifer@extern.example',
      'Cc: noch-einer@extern.example',
      'Subject: =?UTF-8?Q?Bescheid_=C3=BCber_Wohngeld?=',
      'Message-ID: <bescheid-1@behoerde.example>',
      'References: <a@behoerde.example> kaputt <b@behoerde.example>',
      '',
      'Text',
    ].join('\r\n'),
  );

  it('gives the From address only, the ids and the decoded subject', () => {
    const context = readReplyContext(original);
    assert.deepEqual(context.fromAddresses, ['sb@behoerde.example']);
    assert.equal(context.messageId, '<bescheid-1@behoerde.example>');
    assert.deepEqual(context.references, ['<a@behoerde.example>', '<b@behoerde.example>']);
    assert.equal(context.subject, 'Bescheid über Wohngeld');
  });

  // The header block of a stranger's message may be the whole 30 MB: read whole, a Subject folded a million times
  // took 7 s of the portal's one event loop on the reply form, and again on sending the reply.
  it('reads only the first 256 KiB of the header block, as mailparser and the message page do', () => {
    const head = 'From: sb@behoerde.example\r\nSubject: Bescheid\r\nReferences:';
    const references = ' <r@behoerde.example>'.repeat(1_500_000);
    const context = readReplyContext(
      Buffer.from(`${head}${references}\r\nMessage-ID: <spaet@behoerde.example>\r\n\r\nText`),
    );
    assert.equal(context.subject, 'Bescheid');
    assert.deepEqual(context.fromAddresses, ['sb@behoerde.example']);
    assert.ok(context.references.length < (256 * 1024) / 20, `${context.references.length} references read`);
    assert.equal(context.messageId, undefined, 'a field beyond the first 256 KiB is not read');
  });

  it('prefixes Re: once', () => {
    assert.equal(replySubject('Bescheid'), 'Re: Bescheid');
    assert.equal(replySubject('Re: AW: re:Bescheid'), 'Re: Bescheid');
    assert.equal(replySubject(' RE [2] :\tAw[13]: Antw :  Bescheid'), 'Re: Bescheid');
    assert.equal(replySubject('Re [x]: Bescheid'), 'Re: Re [x]: Bescheid');
    assert.equal(replySubject('Re Bescheid: AW:'), 'Re: Re Bescheid: AW:');
    assert.equal(replySubject('Re:'), 'Re: ');
  });

  // The reply page reads a stranger's Subject (as long as its header block): blanks between the prefixes were read
  // in every split of their run (100,000 blanks took 5 s of the portal, a megabyte minutes).
  it('prefixes Re: once to a subject of 1 MiB of blanks in one pass', () => {
    const blanks = ' \t'.repeat(512 * 1024);
    assert.equal(replySubject(`AW${blanks}RE:x`), `Re: AW${blanks}RE:x`);
    assert.equal(replySubject(`AW:${blanks}RE${blanks}:${blanks}x`), 'Re: x');
  });

  it('is quoted under the message limits: one too deep to show is quoted with nothing, not an error', async () => {
    const intro = (from: string) => `${from} schrieb:`;
    assert.equal(await quoteOriginal(original, intro), '\n\nsb@behoerde.example schrieb:\n> Text\n');
    // Within MIME_LIMITS.maxParts (500), so the message page shows it: the reply form quotes it as well.
    const wide = message(
      { subject: 'Breit' },
      multipart(
        'mixed',
        Array.from({ length: 300 }, () => textPart('x')),
      ),
    );
    assert.match(await quoteOriginal(wide, intro), /^\n\namt@behoerde\.example schrieb:\n> x\n/);
    let deep = textPart('tief');
    for (let i = 0; i < 40; i++) deep = multipart('mixed', [deep], `deep${i}`);
    assert.equal(await quoteOriginal(message({ subject: 'Tief' }, deep), intro), '');
  });
});

describe('draft tokens', () => {
  const key = draftTokenKey(randomBytes(32));

  it('give back the id for the mailbox they were made for', () => {
    const token = newDraftToken(key, 'mailbox-a', DATE);
    const id = openDraftToken(key, 'mailbox-a', token, DATE);
    assert.ok(id && token.startsWith(`${id}.`));
  });

  it('refuse another mailbox, another key, a changed id, an expired draft and junk', () => {
    const token = newDraftToken(key, 'mailbox-a', DATE);
    const [id, issued, tag] = token.split('.') as [string, string, string];
    assert.equal(openDraftToken(key, 'mailbox-b', token, DATE), undefined);
    assert.equal(openDraftToken(draftTokenKey(randomBytes(32)), 'mailbox-a', token, DATE), undefined);
    const other = newMessageId(DATE.getTime());
    assert.equal(openDraftToken(key, 'mailbox-a', `${other}.${issued}.${tag}`, DATE), undefined);
    const later = new Date(DATE.getTime() + DRAFT_MAX_AGE_MS + 1000);
    assert.equal(openDraftToken(key, 'mailbox-a', token, later), undefined);
    for (const junk of [undefined, 42, '', id, `${id}.`, `${id}.${tag}`, `${token}.x`, 'x'.repeat(200)]) {
      assert.equal(openDraftToken(key, 'mailbox-a', junk, DATE), undefined, String(junk));
    }
  });
});
