// What of an agency's header reaches a recipient outside: one rule for every copy (outer-headers.ts), whether it is
// encrypted (S/MIME, OpenPGP) or read in the portal; and a header the encryptor cannot write stops the message at
// once, not after a day of retries.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, newMessageId } from '@smgw/envelope';
import { decodeEncodedWords, parseHeaderFields } from '@smgw/mime';
import type { Outcome } from '@smgw/mq';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { getTrace, recordMessage } from '@smgw/trace';
import { type EncryptDeps, encryptEnvelope } from '../src/encrypt-envelope.ts';
import {
  createGpgHome,
  createTestPki,
  encryptDeps,
  type GpgHome,
  handlerContext,
  INNER_ENTITY,
  insertCertificate,
  insertPgpKey,
  insertTrustAnchor,
  type TestPki,
  testEnvelope,
} from './fixtures.ts';

const SMIME = 'smime@buerger.example';
const PGP = 'pgp@buerger.example';
const PORTAL = 'ohne-schluessel@buerger.example';

// As ingest stores what an agency client (Exchange, Outlook) submitted: our Received on top, then the agency's header.
const OUR_RECEIVED =
  'Received: from client.behoerde.example ([10.20.30.40]) by smgw.test with ESMTPS id 01ABC; Mon, 02 Mar 2026 10:00:02 +0100';
const INTERNAL_HEADER = [
  'Received: from PC-ZIMMER-4711.intern.behoerde.local ([10.20.99.17]) by exchange01.intern.behoerde.local',
  '        with Microsoft SMTP Server id 15.2.1118.7; Mon, 02 Mar 2026 10:00:01 +0100',
  'X-Originating-IP: [10.20.99.17]',
  'X-MS-Exchange-Organization-AuthAs: Internal',
  'X-Interne-Verfuegung: Vorgang 4711 - Zahlungsunfaehigkeit pruefen, nicht an Buerger',
  'Comments: intern: Kollegin Meier hat den Fall abgelehnt',
  'Organization: Finanzamt Nord, Referat 3 (Vollstreckung)',
  'User-Agent: Microsoft Outlook 16.0',
];
const LEAKS = [
  'intern.behoerde.local',
  '10.20.99.17',
  'X-MS-Exchange-Organization',
  'Zahlungsunfaehigkeit',
  'Kollegin Meier',
  'Referat 3',
  'Outlook',
  'Pfaendung',
];

function mail(header: string[]): Buffer {
  return Buffer.concat([Buffer.from([...header, ''].join('\r\n')), INNER_ENTITY]);
}

function agencyMail(recipients: string[], subject: string, more: string[] = []): Buffer {
  return mail([
    OUR_RECEIVED,
    ...INTERNAL_HEADER,
    'From: Sachbearbeitung <clerk@behoerde.example>',
    `To: ${recipients.join(', ')}`,
    `Subject: ${subject}`,
    'Date: Mon, 02 Mar 2026 10:00:00 +0100',
    'Message-ID: <policy-1@behoerde.example>',
    'MIME-Version: 1.0 (Az. 4711 Pfaendung Mueller)',
    ...more,
  ]);
}

function headerOf(message: Buffer): string {
  const text = message.toString('latin1');
  return text.slice(0, text.indexOf('\r\n\r\n'));
}

describe('the header of every copy that goes outside', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let gpg: GpgHome;
  let blobStore: BlobStore;

  before(async () => {
    [db, pki, gpg] = await Promise.all([createTestDatabase(), createTestPki(), createGpgHome()]);
    blobStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    const ca = await pki.ca('Header-Policy-CA');
    await insertTrustAnchor(db.pool, ca.der);
    await insertCertificate(db.pool, await pki.leaf(ca, SMIME));
    await insertPgpKey(db.pool, await gpg.exportPublic(await gpg.generateKey(PGP)), 'approved');
  });
  after(async () => {
    await gpg?.close();
    await pki?.remove();
    await db?.drop();
  });

  const deps = (): EncryptDeps => encryptDeps(db.pool, blobStore);

  async function outbound(raw: Buffer, recipients: string[], overrides: Partial<Envelope> = {}): Promise<Envelope> {
    const id = newMessageId();
    const blob = await blobStore.put(Readable.from([raw]), { messageId: id });
    const envelope = testEnvelope(blob, 'outbound', { id, recipients, ...overrides });
    await recordMessage(db.pool, envelope);
    return envelope;
  }

  /** Each child's header, by its first recipient. */
  async function childHeaders(outcome: Outcome): Promise<Map<string, string>> {
    assert.equal(outcome.kind, 'next', JSON.stringify(outcome));
    const children = outcome.kind === 'next' ? outcome.envelopes : [];
    const headers = await Promise.all(children.map(async (c) => headerOf(await blobStore.readAll(c.blob.ref))));
    return new Map(children.map((child, i) => [child.recipients[0] ?? '', headers[i] ?? '']));
  }

  it('gives the portal copy the outer header of the encrypted copies, then the Content-* fields and the body as they were', async () => {
    const raw = agencyMail([PORTAL], 'Ihr Bescheid');
    const envelope = await outbound(raw, [PORTAL]);
    const outcome = await encryptEnvelope(deps(), envelope, handlerContext());
    assert.equal(outcome.kind, 'next', JSON.stringify(outcome));
    const [child] = outcome.kind === 'next' ? outcome.envelopes : [];
    assert.deepEqual(child?.itinerary, ['mailbox']);
    const copy = await blobStore.readAll(child?.blob.ref ?? '');
    const header = headerOf(copy);
    for (const leaked of LEAKS)
      assert.ok(!header.includes(leaked), `the citizen's copy carries "${leaked}":\n${header}`);
    assert.deepEqual(
      parseHeaderFields(header).map((f) => f.name),
      [
        'Received',
        'From',
        'To',
        'Subject',
        'Date',
        'Message-ID',
        'MIME-Version',
        'Content-Type',
        'Content-Transfer-Encoding',
      ],
    );
    assert.ok(header.startsWith(OUR_RECEIVED), 'our own Received, as ingest wrote it');
    assert.match(header, /^MIME-Version: 1\.0$/m);
    const body = INNER_ENTITY.subarray(INNER_ENTITY.indexOf('\r\n\r\n') + 4);
    assert.ok(copy.subarray(header.length + 4).equals(body), 'the body byte for byte');
    // The original stays what a DSN quotes to the agency's sender.
    assert.equal(child?.receivedBlob?.ref, envelope.blob.ref);
    assert.ok((await blobStore.readAll(envelope.blob.ref)).equals(raw), 'the original unchanged');
  });

  it('gives a redelivered portal recipient the same copy again', async () => {
    const envelope = await outbound(agencyMail([PORTAL], 'Ihr Bescheid'), [PORTAL]);
    const first = await encryptEnvelope(deps(), envelope, handlerContext());
    const again = await encryptEnvelope(deps(), envelope, handlerContext({ redelivered: true }));
    const [one, two] = [first, again].map((o) => (o.kind === 'next' ? o.envelopes : []));
    assert.deepEqual([one?.map((c) => c.itinerary), two?.map((c) => c.itinerary)], [[['mailbox']], [['mailbox']]]);
    const copies = await Promise.all([one?.[0], two?.[0]].map((c) => blobStore.readAll(c?.blob.ref ?? '')));
    assert.ok(copies[0]?.equals(copies[1] ?? Buffer.alloc(0)), 'the mailbox stores one of them, either is the same');
  });

  it('keeps the agency header and the MIME-Version comment off the S/MIME and OpenPGP copies too', async () => {
    const envelope = await outbound(agencyMail([SMIME, PGP], 'Ihr Bescheid'), [SMIME, PGP]);
    const headers = await childHeaders(await encryptEnvelope(deps(), envelope, handlerContext()));
    assert.deepEqual([...headers.keys()].sort(), [PGP, SMIME]);
    for (const [recipient, header] of headers) {
      for (const leaked of LEAKS) assert.ok(!header.includes(leaked), `${recipient}: "${leaked}" in clear:\n${header}`);
      assert.deepEqual(header.match(/^MIME-Version:.*$/gim), ['MIME-Version: 1.0'], recipient);
    }
  });

  const subjects: Array<[string, string, string]> = [
    [
      'an encoded line break (a two-line title)',
      '=?UTF-8?Q?Bescheid_vom_2.3.=0AAz._4711?=',
      'Bescheid vom 2.3. Az. 4711',
    ],
    [
      'an encoded CRLF that would start a field',
      '=?UTF-8?Q?Bescheid=0D=0ABcc:_x@evil.example?=',
      'Bescheid Bcc: x@evil.example',
    ],
    ['encoded control characters', '=?UTF-8?B?QmVzY2hlaWQbWzJKCQ==?=', 'Bescheid[2J'],
  ];
  for (const [what, subject, oneLine] of subjects) {
    it(`sends every recipient a message whose subject holds ${what}, the OpenPGP Subject on one line`, async () => {
      const envelope = await outbound(agencyMail([SMIME, PGP, PORTAL], subject), [SMIME, PGP, PORTAL]);
      // Even the first attempt: a retry would meet the same subject.
      const headers = await childHeaders(await encryptEnvelope(deps(), envelope, handlerContext()));
      assert.deepEqual([...headers.keys()].sort(), [PORTAL, PGP, SMIME].sort());
      const pgp = parseHeaderFields(headers.get(PGP) ?? '');
      assert.equal(decodeEncodedWords(pgp.find((f) => f.key === 'subject')?.value ?? ''), oneLine);
      assert.ok(!pgp.some((f) => f.key === 'bcc'), 'no field of the subject');
      // The others keep the encoded-words as the agency wrote them: safe in a header, the reader's client decodes them.
      for (const recipient of [SMIME, PORTAL]) {
        assert.ok(headers.get(recipient)?.split('\r\n').includes(`Subject: ${subject}`), recipient);
      }
    });
  }

  it('gives a message up at once whose header the encryptor refuses: on to deliver, which bounces it, never retried', async () => {
    // No From, and an SMTPUTF8 envelope sender: the From the gateway would write cannot stand in an ASCII header.
    const raw = mail([OUR_RECEIVED, `To: ${PGP}, ${SMIME}`, 'Subject: Bescheid', 'MIME-Version: 1.0']);
    for (const recipient of [PGP, SMIME]) {
      const envelope = await outbound(raw, [recipient], { mailFrom: 'müller@behoerde.example' });
      const outcome = await encryptEnvelope(deps(), envelope, handlerContext());
      assert.equal(outcome.kind, 'next', `${recipient}: ${JSON.stringify(outcome)}`);
      const [given] = outcome.kind === 'next' ? outcome.envelopes : [];
      assert.equal(outcome.kind === 'next' && outcome.envelopes.length, 1, recipient);
      assert.deepEqual(given?.itinerary, ['deliver'], recipient);
      assert.deepEqual(given?.recipients, [recipient]);
      assert.equal(given?.verdicts.crypto?.status, 'not-encryptable', recipient);
      assert.equal(given?.verdicts.crypto?.code, 'ENCRYPT_HEADER_INVALID', recipient);
      // Nothing was made of it: the DSN quotes the header block the agency sent.
      assert.deepEqual(given?.blob, envelope.blob);
      const trace = await getTrace(db.pool, envelope.id);
      const events = trace?.events.filter((e) => e.stage === 'encrypt') ?? [];
      assert.deepEqual(
        events.map((e) => [e.event, e.code]),
        [['message.not-encryptable', 'ENCRYPT_HEADER_INVALID']],
      );
      assert.match(events[0]?.reason ?? '', /^(PGP|SMIME)_INVALID_HEADER: /);
    }
  });

  it('gives up only the copies whose encryptor refuses the header: a recipient of the portal still gets the message', async () => {
    // No From, and an SMTPUTF8 envelope sender: S/MIME and OpenPGP cannot write that From; the portal's copy can.
    const raw = mail([OUR_RECEIVED, `To: ${SMIME}, ${PGP}, ${PORTAL}`, 'Subject: Bescheid', 'MIME-Version: 1.0']);
    const envelope = await outbound(raw, [SMIME, PGP, PORTAL], { mailFrom: 'müller@behoerde.example' });
    const outcome = await encryptEnvelope(deps(), envelope, handlerContext());
    assert.equal(outcome.kind, 'next', JSON.stringify(outcome));
    const children = outcome.kind === 'next' ? outcome.envelopes : [];
    const portal = children.find((c) => c.verdicts.crypto?.status === 'portal');
    assert.deepEqual(portal?.recipients, [PORTAL], 'the portal recipient is handed to the portal, not bounced');
    assert.deepEqual(portal?.itinerary, ['mailbox']);
    const givenUp = children.find((c) => c.verdicts.crypto?.status === 'not-encryptable');
    assert.deepEqual(givenUp?.recipients, [SMIME, PGP]);
    assert.deepEqual(givenUp?.itinerary, ['deliver']);
    assert.equal(givenUp?.verdicts.crypto?.code, 'ENCRYPT_HEADER_INVALID');
    assert.deepEqual(givenUp?.blob, envelope.blob, 'the DSN quotes the header block the agency sent');
    assert.equal(children.length, 2);

    const trace = await getTrace(db.pool, envelope.id);
    const events = trace?.events.filter((e) => e.stage === 'encrypt') ?? [];
    assert.deepEqual(
      events.map((e) => [e.event, e.code, e.recipient ?? null]),
      [
        ['message.not-encryptable', 'ENCRYPT_HEADER_INVALID', null],
        ['message.not-encryptable', 'ENCRYPT_HEADER_INVALID', null],
        ['recipient.to-portal', 'ENCRYPT_NO_KEY', PORTAL],
      ],
    );
    assert.deepEqual(
      events
        .slice(0, 2)
        .map((e) => [(e.data as { form?: string }).form, (e.data as { recipients?: string[] }).recipients]),
      [
        ['smime', [SMIME]],
        ['pgp', [PGP]],
      ],
    );
  });
});
