// Inbound decryption is bound to the recipient: a recipient gets the plaintext only when the message was encrypted to
// one of its own keys. Before, the keys of every agency recipient of the envelope were tried for all of them, so the
// ciphertext of a message to agency B, sent again to B and to an agency-A address, came out decrypted for A too.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, newMessageId } from '@smgw/envelope';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { recordMessage } from '@smgw/trace';
import { sameContentOnce } from '../src/decrypt-inbound.ts';
import { encryptEnvelope } from '../src/encrypt-envelope.ts';
import {
  createTestPki,
  encryptDeps,
  handlerContext,
  insertAgencyKey,
  opensslEncrypted,
  type TestCertificate,
  type TestPki,
  testEnvelope,
} from './fixtures.ts';

const SECRET = 'Bescheid nur fuer Amt B: Aktenzeichen 4711-B';
const INTERNAL = ['amt-a.example', 'amt-b.example'];

describe('inbound decryption: each recipient with its own keys', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let blobStore: BlobStore;
  let agencyA: TestCertificate;
  let agencyB: TestCertificate;

  before(async () => {
    [db, pki] = await Promise.all([createTestDatabase(), createTestPki()]);
    blobStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    const ca = await pki.ca('Inbound-Recipient-CA');
    agencyA = await pki.leaf(ca, 'stelle@amt-a.example', { key: 'rsa-2048' });
    agencyB = await pki.leaf(ca, 'stelle@amt-b.example', { key: 'rsa-2048' });
    await insertAgencyKey(db.pool, 'stelle@amt-a.example', { kind: 'smime', certificate: agencyA });
    await insertAgencyKey(db.pool, 'stelle@amt-b.example', { kind: 'smime', certificate: agencyB });
  });
  after(async () => {
    await pki?.remove();
    await db?.drop();
  });

  /** `encryptedTo`'s ciphertext, arriving from the internet for `recipients`: the stage's child envelopes. */
  async function arrive(
    encryptedTo: TestCertificate[],
    recipients: string[],
    options: { maxRecipientKeySets?: number } = {},
  ): Promise<Envelope[]> {
    const entity = Buffer.from(`Content-Type: text/plain; charset=utf-8\r\n\r\n${SECRET}\r\n`);
    const sent = await opensslEncrypted(pki, encryptedTo, entity, {
      to: recipients.join(', '),
      subject: 'Antrag',
      file: newMessageId(),
    });
    const id = newMessageId();
    const blob = await blobStore.put(Readable.from([sent]), { messageId: id });
    const envelope = testEnvelope(blob, 'inbound', { id, mailFrom: 'absender@extern.example', recipients });
    await recordMessage(db.pool, envelope);
    const outcome = await encryptEnvelope(
      encryptDeps(db.pool, blobStore, { internalDomains: INTERNAL, ...options }),
      envelope,
      handlerContext(),
    );
    assert.equal(outcome.kind, 'next', JSON.stringify(outcome));
    return outcome.kind === 'next' ? outcome.envelopes : [];
  }

  const text = async (child: Envelope) => (await blobStore.readAll(child.blob.ref)).toString('utf8');

  it("gives B's plaintext to B only, when a message to B comes again with an agency-A recipient added", async () => {
    const children = await arrive([agencyB], ['stelle@amt-a.example', 'stelle@amt-b.example']);
    assert.equal(children.length, 2);
    const [forA, forB] = children as [Envelope, Envelope];
    assert.deepEqual(forA.recipients, ['stelle@amt-a.example']);
    assert.equal(forA.verdicts.crypto?.status, 'not-decrypted');
    const closed = await text(forA);
    assert.ok(!closed.includes(SECRET));
    assert.match(closed, /^X-SMGW-Decryption: failed; reason=SMIME_NO_MATCHING_RECIPIENT\r\n/);
    assert.match(closed, /application\/(x-)?pkcs7-mime/);
    assert.deepEqual(forB.recipients, ['stelle@amt-b.example']);
    assert.equal(forB.verdicts.crypto?.status, 'decrypted');
    assert.ok((await text(forB)).includes(SECRET));
    // Both children are the one message: the same id, each recipient once.
    assert.equal(forA.id, forB.id);
    const events = await db.pool.query<{ event: string; recipient: string | null; code: string | null }>(
      `select event, recipient, code from message_events where message_id = $1 and stage = 'encrypt' order by id`,
      [forA.id],
    );
    assert.deepEqual(events.rows, [
      { event: 'message.not-decrypted', recipient: 'stelle@amt-a.example', code: 'SMIME_NO_MATCHING_RECIPIENT' },
      { event: 'message.decrypted', recipient: 'stelle@amt-b.example', code: null },
    ]);
  });

  it('gives a recipient without a key of its own the message as it came, never what another key opened', async () => {
    const children = await arrive([agencyB], ['ohne-schluessel@amt-b.example', 'stelle@amt-b.example']);
    const closed = children.find((c) => c.recipients.includes('ohne-schluessel@amt-b.example'));
    assert.ok(closed && !(await text(closed)).includes(SECRET));
    assert.match(await text(closed), /^X-SMGW-Decryption: failed; reason=ENCRYPT_NO_AGENCY_KEY\r\n/);
  });

  it('decrypts once for all when the message was encrypted to every recipient: one envelope goes on', async () => {
    const children = await arrive([agencyA, agencyB], ['stelle@amt-a.example', 'stelle@amt-b.example']);
    assert.equal(children.length, 1);
    const [both] = children as [Envelope];
    assert.deepEqual(both.recipients, ['stelle@amt-a.example', 'stelle@amt-b.example']);
    assert.equal(both.verdicts.crypto?.status, 'decrypted');
    assert.ok((await text(both)).includes(SECRET));
  });

  it('decrypts with the keys of at most so many recipients: a stranger cannot make one message cost a hundred', async () => {
    const children = await arrive([agencyA, agencyB], ['stelle@amt-a.example', 'stelle@amt-b.example'], {
      maxRecipientKeySets: 1,
    });
    assert.deepEqual(
      children.map((c) => [c.recipients, c.verdicts.crypto?.status]),
      [
        [['stelle@amt-a.example'], 'decrypted'],
        [['stelle@amt-b.example'], 'not-decrypted'],
      ],
    );
    assert.match(
      await text(children[1] as Envelope),
      /^X-SMGW-Decryption: failed; reason=ENCRYPT_TOO_MANY_RECIPIENT_KEYS/,
    );
  });

  it('passes the message on closed, in one envelope per reason, when no recipient holds a key that opens it', async () => {
    const children = await arrive([agencyB], ['andere@amt-a.example', 'dritte@amt-a.example']);
    assert.equal(children.length, 1);
    assert.equal(children[0]?.verdicts.crypto?.status, 'not-decrypted');
    assert.ok(!(await text(children[0] as Envelope)).includes(SECRET));
    const twoReasons = await arrive([agencyB], ['stelle@amt-a.example', 'andere@amt-a.example']);
    assert.deepEqual(
      twoReasons.map((c) => [c.recipients, c.verdicts.crypto?.status]),
      [
        [['stelle@amt-a.example'], 'not-decrypted'],
        [['andere@amt-a.example'], 'not-decrypted'],
      ],
    );
  });

  it('keeps one plaintext: a key that opens the message to other content leaves its recipient closed', () => {
    // S/MIME without integrity (AES-CBC) lets a stranger give each RecipientInfo a content key of its own that still
    // pads correctly: sixteen recipients' keys would otherwise hold sixteen plaintexts of the message limit at once.
    const contents: Buffer[] = [];
    const opened = (text: string) => ({ ok: true as const, entity: Buffer.from(text), address: 'a', fingerprint: 'f' });
    const first = sameContentOnce(opened('Bescheid'), contents);
    const same = sameContentOnce(opened('Bescheid'), contents);
    assert.ok(first.ok && same.ok && same.entity === first.entity, 'equal content held once');
    assert.deepEqual(sameContentOnce(opened('anderer Inhalt'), contents), {
      ok: false,
      code: 'ENCRYPT_CONTENT_DIFFERS',
      detail: "this recipient's key opens the message to other content than another recipient's key",
    });
    assert.equal(contents.length, 1);
  });
});
