// Taking the contents out of every SignedData in a message (signed-contents.ts) and the cheap hint that decides which
// messages are walked (signed-data-hint.ts). SignedData made by `openssl cms -sign -nodetach`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_SIGNED_CONTENT_LIMITS, mayCarrySignedData, signedContentsOf, signedDataHint } from '../src/index.ts';
import {
  type Authority,
  attachment,
  base64Lines,
  header,
  message,
  multipartMixed,
  multipartSigned,
  opaqueSigned,
  type Signer,
  TestPki,
  textPart,
} from './openssl-pki.ts';

const TOP = ['From: absender@extern.example', 'To: stelle@behoerde.example', 'Subject: Unterlagen'];
const document = Buffer.from('%PDF-1.4\n% ein Vertrag\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n');

describe('the contents inside the SignedData of a message', () => {
  let pki: TestPki;
  let root: Authority;
  let stranger: Signer;
  const opaque = (content: Buffer) => pki.sign(content, [stranger], { opaque: true });

  before(async () => {
    pki = await TestPki.create();
    root = await pki.root('Selbstgemacht');
    stranger = await pki.signer(root, 'absender');
  });
  after(() => pki.remove());

  it('finds none in plain mail, and the hint does not fire for it', () => {
    const mail = message(TOP, multipartMixed([textPart('Hallo'), attachment('akte.pdf', 'application/pdf', document)]));
    assert.equal(mayCarrySignedData([mail]), false);
    assert.deepEqual(signedContentsOf(mail), { contents: [] });
  });

  it('takes out the MIME entity of an opaque-signed message, attachments and all', async () => {
    const inner = multipartMixed([textPart('Anbei'), attachment('rechnung.com', 'application/octet-stream', document)]);
    const mail = message(TOP, opaqueSigned(await opaque(inner)));
    assert.equal(mayCarrySignedData([mail]), true);
    const { contents, problem } = signedContentsOf(mail);
    assert.equal(problem, undefined);
    assert.deepEqual(
      contents.map((c) => c.path),
      ['/content'],
    );
    assert.deepEqual(contents[0]?.bytes, inner);
  });

  it('takes out the document of a .p7m attachment (CAdES enveloping), whatever its media type', async () => {
    const mail = message(
      TOP,
      multipartMixed([
        textPart('Anbei der Vertrag'),
        attachment('vertrag.pdf.p7m', 'application/octet-stream', await opaque(document)),
      ]),
    );
    const { contents, problem } = signedContentsOf(mail);
    assert.equal(problem, undefined);
    assert.deepEqual(
      contents.map((c) => [c.path, c.bytes]),
      [['/2/content', document]],
    );
  });

  it('finds SignedData by its bytes under a harmless name, and inside a forwarded message', async () => {
    const signed = await opaque(document);
    const forwarded = message(
      ['Subject: weitergeleitet'],
      multipartMixed([textPart('siehe Anhang'), attachment('rechnung.bin', 'application/octet-stream', signed)], 'b2'),
    );
    const mail = message(
      TOP,
      multipartMixed([
        textPart('Fwd'),
        Buffer.concat([Buffer.from(header(['Content-Type: message/rfc822', ''])), forwarded]),
      ]),
    );
    assert.equal(mayCarrySignedData([mail]), true);
    const { contents, problem } = signedContentsOf(mail);
    assert.equal(problem, undefined);
    assert.deepEqual(
      contents.map((c) => [c.path, c.bytes]),
      [['/2/message/2/content', document]],
    );
  });

  it('opens SignedData nested in SignedData: as DER, and as an opaque-signed entity inside one', async () => {
    const inner = multipartMixed([textPart('innen'), attachment('x.com', 'application/octet-stream', document)]);
    const innerSigned = await opaque(inner);
    const twice = await opaque(innerSigned);
    const mail = message(TOP, opaqueSigned(twice));
    assert.deepEqual(
      signedContentsOf(mail).contents.map((c) => c.path),
      ['/content', '/content/content'],
    );
    assert.deepEqual(signedContentsOf(mail).contents[1]?.bytes, inner);

    const entityInside = await opaque(opaqueSigned(await opaque(inner)));
    const nested = signedContentsOf(message(TOP, opaqueSigned(entityInside)));
    assert.equal(nested.problem, undefined);
    assert.deepEqual(nested.contents.at(-1)?.bytes, inner);
    assert.equal(nested.contents.at(-1)?.path, '/content/content');
  });

  it('looks into an attached message sent base64 (lenient clients show it), and scans any MIME content as mail', async () => {
    const inner = message(TOP, opaqueSigned(await opaque(textPart('innen'))));
    const forwarded = message(
      TOP,
      multipartMixed([
        Buffer.from(
          `${header(['Content-Type: message/rfc822', 'Content-Transfer-Encoding: base64', ''])}${base64Lines(inner)}`,
          'latin1',
        ),
      ]),
    );
    const found = signedContentsOf(forwarded);
    assert.equal(found.problem, undefined);
    assert.equal(found.contents.length, 1);
    assert.match(found.contents[0]?.bytes.toString('latin1') ?? '', /innen/);
    // A .p7m whose name says nothing of MIME but whose content is a MIME entity: scanned as mail all the same.
    const eml = await opaque(textPart('als eml signiert'));
    const named = signedContentsOf(
      message(TOP, multipartMixed([attachment('nachricht.eml.p7m', 'application/octet-stream', eml)])),
    );
    assert.equal(named.contents[0]?.mime, true);
    const pdf = signedContentsOf(
      message(TOP, multipartMixed([attachment('vertrag.pdf.p7m', 'application/pkcs7-mime', await opaque(document))])),
    );
    assert.equal(pdf.contents[0]?.mime, false);
  });

  it('takes nothing out of a detached signature (multipart/signed): its content is the first part, in clear', async () => {
    const entity = textPart('signiert');
    const signature = await pki.sign(entity, [stranger]);
    const mail = message(TOP, multipartSigned(entity, signature));
    assert.deepEqual(signedContentsOf(mail), { contents: [] });
    // A detached signature our strict reader cannot read stops nothing: a mail client shows nothing of it, and
    // quarantining it would stop the signed mail of every client that writes one we do not read.
    const unreadable = message(TOP, multipartSigned(entity, signature.subarray(0, signature.length - 40)));
    assert.deepEqual(signedContentsOf(unreadable), { contents: [] });
    const asAttachment = message(
      TOP,
      multipartMixed([attachment('vertrag.pdf.p7s', 'application/octet-stream', document)]),
    );
    assert.deepEqual(signedContentsOf(asAttachment), { contents: [] });
  });

  it('names what looks like SignedData and cannot be taken apart: never a silent nothing', async () => {
    const signed = await opaque(document);
    const truncated = message(TOP, opaqueSigned(signed.subarray(0, signed.length - 40)));
    assert.equal(signedContentsOf(truncated).problem?.kind, 'malformed');
    const garbage = message(TOP, multipartMixed([attachment('vertrag.pdf.p7m', 'application/pkcs7-mime', document)]));
    assert.deepEqual(signedContentsOf(garbage).problem?.path, '/1');
    // A multipart a mail client may still show (no closing delimiter) with SignedData in it.
    const unclosed = Buffer.from(
      `${header([...TOP, 'Content-Type: multipart/mixed; boundary="u"', ''])}--u\r\n${opaqueSigned(signed).toString('latin1')}`,
      'latin1',
    );
    assert.equal(signedContentsOf(unclosed).problem?.kind, 'malformed');
  });

  it('stops at the depth, count and size limits with a problem, not a partial all-clear', async () => {
    let nested = await opaque(document);
    for (let i = 0; i < 3; i++) nested = await opaque(nested);
    const mail = message(TOP, opaqueSigned(nested));
    const limits = {
      maxDepth: 12,
      maxSignedData: 32,
      maxBytes: 1024 * 1024,
      maxParts: 10_000,
      maxHeaderLines: 100_000,
    };
    assert.equal(signedContentsOf(mail, limits).contents.length, 4);
    assert.equal(signedContentsOf(mail, { ...limits, maxDepth: 2 }).problem?.kind, 'too-deep');
    assert.equal(signedContentsOf(mail, { ...limits, maxSignedData: 3 }).problem?.kind, 'too-many');
    assert.equal(signedContentsOf(mail, { ...limits, maxBytes: 2000 }).problem?.kind, 'too-large');
  });

  it('stops at the budget of MIME parts (10,000): a million tiny parts took 1.9 s of the one event loop', () => {
    const part = Buffer.from('--b\r\n\r\nx\r\n');
    const mail = Buffer.concat([
      Buffer.from('MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'),
      ...Array<Buffer>(100_000).fill(part),
      Buffer.from('--b--\r\n'),
    ]);
    // The message counts one, its parts the rest: part 10,000 is one beyond, and nothing after it is looked at.
    assert.deepEqual(signedContentsOf(mail).problem, {
      kind: 'too-many-parts',
      path: '/10000',
      reason: 'more than 10000 MIME parts',
    });
    assert.deepEqual(
      signedContentsOf(mail, {
        maxDepth: 12,
        maxSignedData: 32,
        maxBytes: 1024,
        maxParts: 100_001,
        maxHeaderLines: 100_000,
      }),
      {
        contents: [],
      },
    );
  });
});

describe('the budget of header lines of the SignedData walk', () => {
  const multipart = (...parts: string[]) =>
    Buffer.from(
      `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n${parts.map((p) => `--b\r\n${p}\r\n`).join('')}--b--\r\n`,
      'latin1',
    );

  it('ends in a problem at a part of 4 million header lines (31 MB held the event loop 2–3 s), and reads none of it', () => {
    const mail = multipart(`${'X-A: b\r\n'.repeat(4_000_000)}Content-Type: application/pkcs7-mime\r\n\r\nx`);
    assert.deepEqual(signedContentsOf(mail).problem, {
      kind: 'header-too-large',
      path: '/1',
      reason: 'more than 99998 header lines left to read',
    });
  });

  it('ends there for one folded field of many lines and for one header line over 1 MiB too', () => {
    assert.equal(
      signedContentsOf(multipart(`X-A: b${'\r\n b'.repeat(200_000)}\r\n\r\nx`)).problem?.kind,
      'header-too-large',
    );
    const long = signedContentsOf(multipart(`X-A: ${'b'.repeat(1024 * 1024)}\r\n\r\nx`)).problem;
    assert.deepEqual(long, {
      kind: 'header-too-large',
      path: '/1',
      reason: 'a header block longer than 1048576 bytes',
    });
  });

  it('counts the lines of every part together: the message header of 2 and 1,000 parts of 3 fit 3,002 lines and not 3,001', () => {
    const mail = multipart(...Array<string>(1000).fill('Content-Type: text/plain\r\nX-A: 1\r\nX-B: 2\r\n\r\nx'));
    const limits = { ...DEFAULT_SIGNED_CONTENT_LIMITS, maxHeaderLines: 3_002 };
    assert.deepEqual(signedContentsOf(mail, limits), { contents: [] });
    assert.deepEqual(signedContentsOf(mail, { ...limits, maxHeaderLines: 3_001 }).problem, {
      kind: 'header-too-large',
      path: '/1000',
      reason: 'more than 2 header lines left to read',
    });
  });
});

describe('the hint that a message may carry SignedData', () => {
  it('fires for CMS media types and names, also cut across chunks, and for base64 SignedData under any name', () => {
    const hits = [
      'Content-Type: application/x-pkcs7-mime; smime-type=signed-data',
      'Content-Disposition: attachment; filename="vertrag.pdf.P7M"',
      "Content-Disposition: attachment; filename*=UTF-8''vertrag%2Ep7m",
      'Content-Type: application/octet-stream; name="=?UTF-8?B?dmVydHJhZy5wN20=?="',
      // An encoded word inside the name, as clients decode it too ("Bescheid" + ".p7m"), also folded.
      'Content-Disposition: attachment; filename="Bescheid=?utf-8?B?LnA3bQ==?="',
      'Content-Disposition: attachment;\r\n filename="Bescheid vom\r\n 3. Mai=?utf-8?B?LnA3bQ==?="',
      // An attached message: its header may be base64, where no name or type shows.
      'Content-Type: message/rfc822',
    ];
    for (const text of hits) assert.equal(mayCarrySignedData([Buffer.from(text)]), true, text);
    const hint = signedDataHint();
    hint.push(Buffer.from('Content-Type: application/pk'));
    hint.push(Buffer.from('cs7-mime\r\n'));
    assert.equal(hint.seen, true);
    for (const pad of ['', 'a', 'ab']) {
      // A ContentInfo after 0, 1 or 2 other bytes: the signedData OID at each alignment its base64 can have.
      const der = Buffer.concat([Buffer.from(pad), Buffer.from('308006092a864886f70d010702a080', 'hex')]);
      assert.equal(mayCarrySignedData([Buffer.from(base64Lines(der))]), true, `after ${pad.length} bytes`);
    }
  });
});
