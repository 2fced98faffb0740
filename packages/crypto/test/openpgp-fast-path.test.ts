// The fast path of encryptPgpMime (no signing key): our own SEIPDv1 packet, partial lengths and armor, with the
// session key packets from openpgp. The real gpg opens what it writes, byte for byte, at every size that matters for
// the packet framing, and refuses it when one byte of the ciphertext is changed (MDC).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import * as openpgp from 'openpgp';
import { crc24, MessageArmorWriter } from '../src/openpgp/armor-writer.ts';
import { decryptPgpMime, encryptPgpMime, type OuterHeaders, PgpError } from '../src/openpgp/index.ts';
import { definiteLength } from '../src/openpgp/seipd-v1-writer.ts';
import { createGpgHome, type GpgHome, wrapAsPgpMime } from './openpgp-gpg.ts';

const headers: OuterHeaders = {
  from: 'Bauamt <bauamt@stadt.example.gov>',
  to: 'buerger@example.net',
  subject: 'Bescheid',
  date: new Date('2026-11-28T08:00:00Z'),
  messageId: '01JDX0000FAST@gateway.example.gov',
};

/** The armored text of the encrypted.asc part. */
async function armoredPart(message: Buffer): Promise<Buffer> {
  const parsed = await simpleParser(message);
  const data = parsed.attachments[1];
  assert.equal(data?.filename, 'encrypted.asc');
  return data.content;
}

async function encrypt(content: Buffer | Readable, recipientKeys: string[], now?: Date): Promise<Buffer> {
  const message = await buffer(
    await encryptPgpMime({ content, recipientKeys, headers, ...(now === undefined ? {} : { now }) }),
  );
  assert.ok(!/(?<!\r)\n/.test(message.toString('latin1')), 'every line ends in CRLF');
  return message;
}

/** Binary OpenPGP data armored again (with a correct checksum), as an attacker in the middle could. */
function armor(binary: Buffer): string {
  const writer = new MessageArmorWriter();
  return Buffer.concat([writer.write([binary]), writer.end()]).toString('latin1');
}

/** The entity bytes in irregular chunks, so packet parts never line up with input chunks. */
function oddChunks(entity: Buffer, size = 1000): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < entity.length; offset += size) yield entity.subarray(offset, offset + size);
    })(),
  );
}

// Literal data body = 6 + n bytes; the SEIPD body = 53 + n bytes while the literal packet has one definite length.
// Sizes just below, at and above the 2^16-byte part of either packet, and around two parts of the literal packet.
const BOUNDARY_SIZES = [65_482, 65_483, 65_484, 65_529, 65_530, 65_531, 131_065, 131_066, 131_067];

describe('encryptPgpMime fast path with gpg as the recipient', () => {
  let curveHome: GpgHome;
  let rsaHome: GpgHome;
  let curveKey: string;
  let rsaKey: string;
  let curveSecret: string;

  before(async () => {
    curveHome = await createGpgHome();
    rsaHome = await createGpgHome();
    const curveFingerprint = await curveHome.generateKey({ kind: 'cv25519', name: 'Bürger', email: 'b@example.net' });
    curveKey = await curveHome.exportPublic(curveFingerprint);
    curveSecret = await curveHome.exportSecret(curveFingerprint);
    const rsaFingerprint = await rsaHome.generateKey({ kind: 'rsa3072', name: 'Kanzlei', email: 'k@example.net' });
    rsaKey = await rsaHome.exportPublic(rsaFingerprint);
  });

  after(async () => {
    await curveHome?.close();
    await rsaHome?.close();
  });

  async function gpgOpens(home: GpgHome, armored: Buffer, entity: Buffer): Promise<void> {
    const result = await home.run(['--decrypt'], armored);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.status.includes('DECRYPTION_OKAY'), result.stderr);
    assert.ok(result.status.includes('GOODMDC'), result.stderr);
    // MDC (SEIPDv1), cipher 9 = AES-256, no AEAD.
    assert.ok(result.status.includes('DECRYPTION_INFO 2 9 0'), result.stderr);
    assert.equal(result.stdout.length, entity.length);
    assert.ok(result.stdout.equals(entity), 'gpg gives back the exact entity');
  }

  it('writes SEIPDv1 with AES-256, an uncompressed binary literal packet and a CRC-24 armor line', async () => {
    const entity = randomBytes(200_000);
    const armored = await armoredPart(await encrypt(entity, [curveKey]));
    const text = armored.toString('latin1');
    assert.match(text, /^-----BEGIN PGP MESSAGE-----\r?\n\r?\n/);
    assert.match(text, /\r?\n=[A-Za-z0-9+/]{4}\r?\n-----END PGP MESSAGE-----/);
    const bodyLines = text.split(/\r?\n/).slice(2, -4);
    assert.ok(
      bodyLines.every((line) => line.length === 64),
      'all but the last base64 line hold 64 characters',
    );
    const packets = (await curveHome.run(['--list-packets', '--show-session-key'], armored)).stdout.toString();
    assert.match(packets, /:encrypted data packet:\s+length: unknown\s+mdc_method: 2/);
    assert.match(packets, /:literal data packet:\s+mode b/);
    assert.doesNotMatch(packets, /:compressed packet:/);
    assert.match(packets, /tag=18 .*partial/);
    await gpgOpens(curveHome, armored, entity);
  });

  it('gives a Curve25519 recipient and an RSA 3072 recipient the exact entity', async () => {
    const entity = Buffer.from('Content-Type: text/plain; charset=utf-8\r\n\r\nGrüße\r\n');
    await gpgOpens(curveHome, await armoredPart(await encrypt(entity, [curveKey])), entity);
    await gpgOpens(rsaHome, await armoredPart(await encrypt(entity, [rsaKey])), entity);
  });

  it('encrypts one message that each of two recipients opens with only their own key', async () => {
    const entity = randomBytes(70_000);
    const armored = await armoredPart(await encrypt(oddChunks(entity), [curveKey, rsaKey]));
    await gpgOpens(curveHome, armored, entity);
    await gpgOpens(rsaHome, armored, entity);
  });

  it('encrypts an empty entity and a one-byte entity', async () => {
    for (const entity of [Buffer.alloc(0), Buffer.from('x')]) {
      await gpgOpens(curveHome, await armoredPart(await encrypt(entity, [curveKey])), entity);
      await gpgOpens(curveHome, await armoredPart(await encrypt(Readable.from([entity]), [curveKey])), entity);
    }
  });

  it('frames every size around the partial body length boundaries so that gpg reads it', async () => {
    for (const size of BOUNDARY_SIZES) {
      const entity = randomBytes(size);
      await gpgOpens(curveHome, await armoredPart(await encrypt(entity, [curveKey])), entity);
      await gpgOpens(curveHome, await armoredPart(await encrypt(oddChunks(entity, 4099), [curveKey])), entity);
    }
  });

  it('streams a 5 MB entity that gpg and decryptPgpMime give back byte for byte', async () => {
    const entity = randomBytes(5 * 1024 * 1024);
    const message = await encrypt(oddChunks(entity, 64 * 1024 + 7), [curveKey, rsaKey]);
    await gpgOpens(rsaHome, await armoredPart(message), entity);
    const opened = await decryptPgpMime({ message, privateKeys: [{ armored: curveSecret }] });
    assert.equal(opened.format, 'pgp-mime');
    assert.ok(opened.entity.equals(entity));
  });

  it('is opened by decryptPgpMime at small sizes too', async () => {
    for (const entity of [
      Buffer.alloc(0),
      Buffer.from('Content-Type: text/plain\r\n\r\nok\r\n'),
      randomBytes(65_531),
    ]) {
      const message = await encrypt(entity, [curveKey]);
      const opened = await decryptPgpMime({ message, privateKeys: [{ armored: curveSecret }] });
      assert.ok(opened.entity.equals(entity));
    }
  });

  it('is refused by gpg and decryptPgpMime when one byte of the ciphertext is changed', async () => {
    const entity = randomBytes(10_000);
    const armored = await armoredPart(await encrypt(entity, [curveKey]));
    const binary = Buffer.from((await openpgp.unarmor(armored.toString('latin1'))).data as Uint8Array);
    const tampered = Buffer.from(binary);
    const at = tampered.length - 5_000; // inside the encrypted literal data
    tampered[at] = (tampered[at] as number) ^ 0x01;
    const rearmored = armor(tampered);
    const result = await curveHome.run(['--decrypt'], rearmored);
    assert.notEqual(result.code, 0, 'gpg must fail');
    assert.ok(!result.status.includes('DECRYPTION_OKAY'), result.stderr);
    assert.ok(
      result.status.includes('DECRYPTION_FAILED') || result.status.some((line) => line.startsWith('BADMDC')),
      result.stderr,
    );
    // The untampered bytes, re-armored the same way, still open: the failure is the change, not the re-armoring.
    const intact = await curveHome.run(['--decrypt'], armor(binary));
    assert.equal(intact.code, 0, intact.stderr);
    await assert.rejects(
      decryptPgpMime({
        message: wrapAsPgpMime(rearmored),
        privateKeys: [{ armored: curveSecret }],
      }),
      (error: unknown) => error instanceof PgpError && error.code === 'PGP_DECRYPT_FAILED',
    );
  });

  it('still refuses a cached recipient key once it has expired', async () => {
    const fingerprint = await curveHome.generateKey({
      kind: 'cv25519',
      name: 'Kurz',
      email: 'k2@example.net',
      expire: '1d',
    });
    const key = await curveHome.exportPublic(fingerprint);
    await encrypt(Buffer.from('today'), [key]);
    await assert.rejects(
      encryptPgpMime({
        content: Buffer.from('later'),
        recipientKeys: [key],
        headers,
        now: new Date(Date.now() + 3 * 86_400_000),
      }),
      (error: unknown) =>
        error instanceof PgpError && error.code === 'PGP_RECIPIENT_KEY_UNUSABLE' && error.message.includes(fingerprint),
    );
  });

  it('refuses a key from the very second it expires, also right after using it in the second before', async () => {
    const created = new Date('2026-11-01T00:00:00Z');
    const { publicKey } = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ email: 'expiring@example.net' }],
      date: created,
      keyExpirationTime: 100,
      format: 'armored',
    });
    const at = (milliseconds: number) => new Date(created.getTime() + milliseconds);
    const refused = (error: unknown) => error instanceof PgpError && error.code === 'PGP_RECIPIENT_KEY_UNUSABLE';
    await encrypt(Buffer.from('a'), [publicKey], at(99_000));
    await encrypt(Buffer.from('b'), [publicKey], at(99_999));
    await assert.rejects(
      encryptPgpMime({ content: Buffer.from('c'), recipientKeys: [publicKey], headers, now: at(100_000) }),
      refused,
    );
    await encrypt(Buffer.from('d'), [publicKey], at(99_500));
    await assert.rejects(
      encryptPgpMime({ content: Buffer.from('e'), recipientKeys: [publicKey], headers, now: at(100_001) }),
      refused,
    );
    await assert.rejects(
      encryptPgpMime({ content: Buffer.from('f'), recipientKeys: [publicKey], headers, now: at(-1) }),
      refused,
    );
  });

  it('takes the session key packet from openpgp for a v4 key of another kind (X25519 of RFC 9580)', async () => {
    const generated = await openpgp.generateKey({
      type: 'curve25519',
      userIDs: [{ email: 'x25519@example.net' }],
      format: 'armored',
    });
    const entity = randomBytes(1000);
    const message = await encrypt(entity, [generated.publicKey, curveKey]);
    const armored = (await armoredPart(message)).toString('latin1');
    const parsed = await openpgp.readMessage({ armoredMessage: armored });
    const pkesks = parsed.packets.filterByTag(openpgp.enums.packet.publicKeyEncryptedSessionKey);
    assert.equal(pkesks.length, 2);
    const seipd = parsed.packets.findPacket(openpgp.enums.packet.symEncryptedIntegrityProtectedData);
    assert.equal((seipd as unknown as { version: number }).version, 1);
    const opened = await decryptPgpMime({ message, privateKeys: [{ armored: generated.privateKey }] });
    assert.ok(opened.entity.equals(entity));
    await gpgOpens(curveHome, Buffer.from(armored), entity);
  });

  it('leaves a recipient key that announces SEIPDv2 to openpgp, which writes SEIPDv2', async () => {
    const generated = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ email: 'modern@example.net' }],
      format: 'armored',
      config: { aeadProtect: true },
    });
    const entity = Buffer.from('modern\r\n');
    const message = await encrypt(entity, [generated.publicKey]);
    const armored = (await armoredPart(message)).toString('latin1');
    const parsed = await openpgp.readMessage({ armoredMessage: armored });
    const data =
      parsed.packets.findPacket(openpgp.enums.packet.aeadEncryptedData) ??
      parsed.packets.findPacket(openpgp.enums.packet.symEncryptedIntegrityProtectedData);
    assert.equal((data as unknown as { version: number }).version, 2);
    const opened = await decryptPgpMime({ message, privateKeys: [{ armored: generated.privateKey }] });
    assert.ok(opened.entity.equals(entity));
  });
});

describe('OpenPGP armor and packet framing pieces', () => {
  it('computes the CRC-24 check value of RFC 4880 (CRC-24/OPENPGP of "123456789" is 0x21CF02)', () => {
    assert.equal(crc24(Buffer.from('123456789')), 0x21cf02);
  });

  it('computes the same CRC-24 as the bit-by-bit definition at every length and alignment', () => {
    const reference = (bytes: Uint8Array) => {
      let crc = 0xb704ce;
      for (const byte of bytes) {
        crc ^= byte << 16;
        for (let bit = 0; bit < 8; bit++) {
          crc <<= 1;
          if (crc & 0x1000000) crc ^= 0x1864cfb;
        }
      }
      return crc & 0xffffff;
    };
    const data = randomBytes(300);
    for (let start = 0; start < 9; start++) {
      for (let length = 0; length < 40; length++) {
        const slice = data.subarray(start, start + length);
        assert.equal(crc24(slice), reference(slice), `start ${start}, length ${length}`);
      }
      const rest = data.subarray(start);
      assert.equal(crc24(rest.subarray(77), crc24(rest.subarray(0, 77))), reference(rest), 'continued');
    }
  });

  it('writes definite body lengths in one, two and five octets as RFC 4880 §4.2.2 shows', () => {
    assert.deepEqual([...definiteLength(0)], [0]);
    assert.deepEqual([...definiteLength(191)], [191]);
    assert.deepEqual([...definiteLength(192)], [192, 0]);
    assert.deepEqual([...definiteLength(1723)], [0xc5, 0xfb]);
    assert.deepEqual([...definiteLength(8383)], [0xdf, 0xff]);
    assert.deepEqual([...definiteLength(8384)], [0xff, 0, 0, 0x20, 0xc0]);
    assert.deepEqual([...definiteLength(100_000)], [0xff, 0x00, 0x01, 0x86, 0xa0]);
  });
});
