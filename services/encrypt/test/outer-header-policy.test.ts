// What of an agency's header reaches a recipient outside: one rule for every copy (outer-headers.ts).
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, newMessageId } from '@smgw/envelope';
import type { Outcome } from '@smgw/mq';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { recordMessage } from '@smgw/trace';
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

  it('keeps the agency header and the MIME-Version comment off the S/MIME and OpenPGP copies too', async () => {
    const envelope = await outbound(agencyMail([SMIME, PGP], 'Ihr Bescheid'), [SMIME, PGP]);
    const headers = await childHeaders(await encryptEnvelope(deps(), envelope, handlerContext()));
    assert.deepEqual([...headers.keys()].sort(), [PGP, SMIME]);
    for (const [recipient, header] of headers) {
      for (const leaked of LEAKS) assert.ok(!header.includes(leaked), `${recipient}: "${leaked}" in clear:\n${header}`);
      assert.deepEqual(header.match(/^MIME-Version:.*$/gim), ['MIME-Version: 1.0'], recipient);
    }
  });
});
