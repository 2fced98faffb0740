// The header block of what the gateway decrypts joins the message's outer one: a stranger who encrypts to an agency's
// public key chooses it, and ingest's refusal of a top header over 1 MiB never saw it. Beyond that bound the message
// goes on as it came, not opened, and the search for the block's end stops at the bound.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, newMessageId } from '@smgw/envelope';
import { findHeaderEndWithin, splitMessage } from '@smgw/mime';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { recordMessage } from '@smgw/trace';
import { encryptEnvelope } from '../src/encrypt-envelope.ts';
import {
  createTestPki,
  encryptDeps,
  handlerContext,
  insertAgencyKey,
  type TestCertificate,
  type TestPki,
  testEnvelope,
} from './fixtures.ts';

const AGENCY = 'stelle@amt.example';
const SECRET = 'Vertraulich: Aktenzeichen 4711-X';

describe('the header block of decrypted content', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let blobStore: BlobStore;
  let agency: TestCertificate;

  before(async () => {
    [db, pki] = await Promise.all([createTestDatabase(), createTestPki()]);
    blobStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    const ca = await pki.ca('Header-CA');
    agency = await pki.leaf(ca, AGENCY, { key: 'rsa-2048' });
    await insertAgencyKey(db.pool, AGENCY, { kind: 'smime', certificate: agency });
  });
  after(async () => {
    await pki?.remove();
    await db?.drop();
  });

  /** `entity` S/MIME-encrypted to the agency as it is (-binary: openssl leaves its line ends alone). */
  async function encrypted(entity: Buffer): Promise<Buffer> {
    const file = await pki.file(`${newMessageId()}.eml`, entity);
    const args = ['cms', '-encrypt', '-binary', '-in', file, '-aes256', '-from', 'fremder@extern.example'];
    return pki.openssl([...args, '-to', AGENCY, '-subject', 'Antrag', agency.certPath]);
  }

  async function arrive(message: Buffer): Promise<{ child: Envelope; text: string }> {
    const id = newMessageId();
    const blob = await blobStore.put(Readable.from([message]), { messageId: id });
    const envelope = testEnvelope(blob, 'inbound', { id, mailFrom: 'fremder@extern.example', recipients: [AGENCY] });
    await recordMessage(db.pool, envelope);
    const deps = encryptDeps(db.pool, blobStore, {
      internalDomains: ['amt.example'],
      maxMessageBytes: 8 * 1024 * 1024,
    });
    const outcome = await encryptEnvelope(deps, envelope, handlerContext());
    assert.equal(outcome.kind, 'next', JSON.stringify(outcome));
    const child = (outcome as { envelopes: Envelope[] }).envelopes[0] as Envelope;
    return { child, text: (await blobStore.readAll(child.blob.ref)).toString('latin1') };
  }

  const cases: Array<[string, string]> = [
    ['short fields', 'X-A: b\r\n'.repeat(200_000)],
    ['three-byte bare-LF lines', 'a:\n'.repeat(400_000)],
    ['one field folded over many lines', `X-A: b\r\n${' c\r\n'.repeat(300_000)}`],
  ];
  for (const [name, lines] of cases) {
    it(`leaves content closed whose header of ${name} takes the top header over 1 MiB`, async () => {
      const entity = Buffer.from(`Content-Type: text/plain\r\n${lines}\r\n${SECRET}\r\n`, 'latin1');
      const { child, text } = await arrive(await encrypted(entity));
      assert.equal(child.verdicts.crypto?.status, 'not-decrypted');
      assert.match(text, /^X-SMGW-Decryption: failed; reason=ENCRYPT_DECRYPTED_HEADER_TOO_LARGE\r\n/);
      assert.ok(!text.includes(SECRET));
      // What goes on is read by every later stage: its header is the outer one, within the bound.
      await splitMessage(Readable.from([Buffer.from(text, 'latin1')]));
    });
  }

  it('opens content whose header, bare LF made CRLF, keeps the top header within 1 MiB', async () => {
    // About 0.9 MiB once CRLF: near the bound, and made longer by the line ends.
    const entity = Buffer.from(`Content-Type: text/plain\n${'X-A: bc\n'.repeat(105_000)}\n${SECRET}\n`, 'latin1');
    const { child, text } = await arrive(await encrypted(entity));
    assert.equal(child.verdicts.crypto?.status, 'decrypted');
    assert.ok(text.includes(`\r\n\r\n${SECRET}\r\n`));
    const { fields } = await splitMessage(Readable.from([Buffer.from(text, 'latin1')]));
    assert.equal(fields.filter((f) => f.key === 'x-a').length, 105_000);
  });

  it('leaves content closed whose header is within 1 MiB only before its bare LF are made CRLF', async () => {
    // 0.75 MiB as sent, 1 MiB and more with CRLF.
    const entity = Buffer.from(`Content-Type: text/plain\n${'a:\n'.repeat(262_144)}\n${SECRET}\n`, 'latin1');
    const { child, text } = await arrive(await encrypted(entity));
    assert.equal(child.verdicts.crypto?.status, 'not-decrypted');
    assert.match(text, /reason=ENCRYPT_DECRYPTED_HEADER_TOO_LARGE/);
  });
});

describe('the end of a header block within a bound', () => {
  it('is found within the bound, with or without a blank line', () => {
    assert.deepEqual(findHeaderEndWithin(Buffer.from('A: b\r\n\r\nbody'), 6), { headerLength: 6, bodyStart: 8 });
    assert.deepEqual(findHeaderEndWithin(Buffer.from('A: b\r\n'), 6), { headerLength: 6, bodyStart: 6 });
    assert.equal(findHeaderEndWithin(Buffer.from('A: b\r\nC: d\r\n\r\n'), 6), undefined);
    assert.equal(findHeaderEndWithin(Buffer.from('A: b\r\nC'), 6), undefined);
  });

  it('counts the last line break of the block, not the blank line, against the bound', () => {
    const block = Buffer.from(`${'a:\n'.repeat(100)}\nbody`);
    assert.deepEqual(findHeaderEndWithin(block, 300), { headerLength: 300, bodyStart: 301 });
    assert.equal(findHeaderEndWithin(block, 299), undefined);
  });
});
