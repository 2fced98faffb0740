// Anyone can write session-key packets to an agency's public key (or to the wildcard key id, which every key of ours
// is tried for): openpgp tries every one of them (a private-key operation each, 3 ms for RSA-3072), then decrypts the
// whole encrypted data once per distinct session key they give, holding each plaintext. A 50 MB message held
// ~95,000 of them, minutes of the event loop per recipient. Only a few session-key packets for our keys are tried,
// and a message with more session-key packets in all than any real one is refused before openpgp reads them.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import {
  decryptPgpMime,
  MAX_SESSION_KEY_PACKETS,
  MAX_SESSION_KEYS_TRIED,
  PgpError,
  type PgpErrorCode,
} from '../src/openpgp/index.ts';
import { sampleEntity, wrapAsPgpMime } from './openpgp-gpg.ts';

const withCode = (code: PgpErrorCode) => (error: unknown) => error instanceof PgpError && error.code === code;
const crLf = (armored: string) => armored.replace(/\r?\n/g, '\r\n');

describe('decryptPgpMime bounds the session-key packets it tries', { timeout: 120_000 }, () => {
  let agency: { privateKey: string; publicKey: openpgp.PublicKey };
  let stranger: openpgp.PublicKey;

  before(async () => {
    const generated = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ email: 'poststelle@behoerde.example' }],
      format: 'armored',
    });
    agency = {
      privateKey: generated.privateKey,
      publicKey: await openpgp.readKey({ armoredKey: generated.publicKey }),
    };
    const other = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ email: 'someone@example.net' }],
      format: 'armored',
    });
    stranger = await openpgp.readKey({ armoredKey: other.publicKey });
  });

  const encrypt = async (encryptionKeys: openpgp.PublicKey[], wildcard = false) =>
    wrapAsPgpMime(
      crLf(
        await openpgp.encrypt({
          message: await openpgp.createMessage({ binary: sampleEntity() }),
          encryptionKeys,
          wildcard,
        }),
      ),
    );

  /** One session-key packet to us and `foreign` copies of one to another key, before the encrypted data. */
  const withForeignSessionKeys = async (foreign: number) => {
    const binary = Buffer.from(
      await openpgp.encrypt({
        message: await openpgp.createMessage({ binary: sampleEntity() }),
        encryptionKeys: [agency.publicKey, stranger],
        format: 'binary',
      }),
    );
    const ours = binary.subarray(0, newFormatPacketLength(binary, 0));
    const theirs = binary.subarray(ours.length, ours.length + newFormatPacketLength(binary, ours.length));
    const encrypted = binary.subarray(ours.length + theirs.length);
    const packets = Buffer.concat([...Array<Buffer>(foreign).fill(theirs), ours, encrypted]);
    return wrapAsPgpMime(crLf(openpgp.armor(openpgp.enums.armor.message, packets)));
  };

  it(`opens a message with ${MAX_SESSION_KEYS_TRIED} session-key packets for our key`, async () => {
    const message = await encrypt(Array(MAX_SESSION_KEYS_TRIED).fill(agency.publicKey));
    const opened = await decryptPgpMime({ message, privateKeys: [{ armored: agency.privateKey }] });
    assert.deepEqual(opened.entity, sampleEntity());
  });

  it('refuses one more session-key packet for our key (PGP_TOO_MANY_SESSION_KEYS)', async () => {
    const message = await encrypt(Array(MAX_SESSION_KEYS_TRIED + 1).fill(agency.publicKey));
    await assert.rejects(
      decryptPgpMime({ message, privateKeys: [{ armored: agency.privateKey }] }),
      withCode('PGP_TOO_MANY_SESSION_KEYS'),
    );
  });

  it('refuses as many to the wildcard key id (hidden recipients), each tried with every key of ours', async () => {
    const message = await encrypt(Array(MAX_SESSION_KEYS_TRIED + 1).fill(agency.publicKey), true);
    await assert.rejects(
      decryptPgpMime({ message, privateKeys: [{ armored: agency.privateKey }] }),
      withCode('PGP_TOO_MANY_SESSION_KEYS'),
    );
  });

  it('opens a message to many other recipients beside us', async () => {
    const message = await withForeignSessionKeys(200);
    const opened = await decryptPgpMime({ message, privateKeys: [{ armored: agency.privateKey }] });
    assert.deepEqual(opened.entity, sampleEntity());
  });

  it(`refuses more than ${MAX_SESSION_KEY_PACKETS} session-key packets in all, before openpgp reads them`, async () => {
    const message = await withForeignSessionKeys(20_000);
    const started = performance.now();
    await assert.rejects(
      decryptPgpMime({ message, privateKeys: [{ armored: agency.privateKey }] }),
      withCode('PGP_TOO_MANY_SESSION_KEYS'),
    );
    // openpgp took ~1 s to read them and 0.3 ms each to look for our key; counting their headers takes milliseconds.
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 1000, `took ${elapsed} ms`);
  });

  it('refuses a flood of padding packets (2 s for 300,000 in openpgp) as well', async () => {
    const binary = Buffer.from(
      await openpgp.encrypt({
        message: await openpgp.createMessage({ binary: sampleEntity() }),
        encryptionKeys: agency.publicKey,
        format: 'binary',
      }),
    );
    const padding = Buffer.from([0xc0 | openpgp.enums.packet.padding, 1, 0]);
    const message = wrapAsPgpMime(
      crLf(
        openpgp.armor(openpgp.enums.armor.message, Buffer.concat([...Array<Buffer>(300_000).fill(padding), binary])),
      ),
    );
    await assert.rejects(
      decryptPgpMime({ message, privateKeys: [{ armored: agency.privateKey }] }),
      withCode('PGP_TOO_MANY_SESSION_KEYS'),
    );
  });
});

/** The length, header included, of the new-format packet (as openpgp writes session-key packets) at `at`. */
function newFormatPacketLength(bytes: Buffer, at: number): number {
  assert.equal((bytes[at] as number) & 0xc0, 0xc0, 'a new-format packet header');
  const first = bytes[at + 1] as number;
  if (first < 192) return 2 + first;
  assert.ok(first < 224, 'a one- or two-octet length');
  return 3 + ((first - 192) << 8) + (bytes[at + 2] as number) + 192;
}
