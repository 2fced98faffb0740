// Anyone can encrypt to an agency's public key: compressed data that inflates beyond what the caller allows is refused
// with PGP_TOO_LARGE while inflating (1.7 MB of armored zlib zeros once became 1 GB of plaintext and a crash).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { DEFAULT_MAX_DECRYPTED_BYTES } from '../src/openpgp/decrypt-pgp-mime.ts';
import { decryptPgpMime, PgpError } from '../src/openpgp/index.ts';
import { createGpgHome, type GpgHome, sampleEntity, wrapAsInline, wrapAsPgpMime } from './openpgp-gpg.ts';

const MiB = 1024 * 1024;

const isTooLarge = (error: unknown) => error instanceof PgpError && error.code === 'PGP_TOO_LARGE';
/** Refused by openpgp while inflating, not after. */
const isStoppedInflating = (error: unknown) =>
  isTooLarge(error) && /Maximum decompressed (message )?size exceeded/.test(String((error as Error).cause));

describe('decryptPgpMime bounds what compressed data inflates to', { timeout: 120_000 }, () => {
  let agency: { privateKey: string; publicKey: openpgp.PublicKey };
  let gpg: GpgHome;

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
    gpg = await createGpgHome();
    await gpg.importKey(generated.publicKey);
  });
  after(async () => {
    await gpg?.close();
  });

  const compressedWithOpenpgp =
    (algorithm: 'zlib' | 'zip') =>
    async (plaintext: Uint8Array): Promise<string> =>
      openpgp.encrypt({
        message: await openpgp.createMessage({ binary: plaintext }),
        encryptionKeys: agency.publicKey,
        config: { preferredCompressionAlgorithm: openpgp.enums.compression[algorithm] },
      });
  const compressedWithGpgBzip2 = async (plaintext: Uint8Array): Promise<string> => {
    const fingerprint = agency.publicKey.getFingerprint();
    const result = await gpg.run(
      ['--armor', '--encrypt', '--compress-algo', 'bzip2', '-r', fingerprint],
      Buffer.from(plaintext),
    );
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.toString('utf8');
  };
  const crLf = (armored: string) => armored.replace(/\r?\n/g, '\r\n');

  const cases = [
    { what: 'PGP/MIME, zlib (openpgp)', encrypt: compressedWithOpenpgp('zlib'), wrap: wrapAsPgpMime },
    { what: 'inline, zip (openpgp)', encrypt: compressedWithOpenpgp('zip'), wrap: wrapAsInline },
    { what: 'PGP/MIME, bzip2 (gpg)', encrypt: compressedWithGpgBzip2, wrap: wrapAsPgpMime },
  ];
  for (const { what, encrypt, wrap } of cases) {
    it(`refuses ${what} that inflates beyond maxBytes with PGP_TOO_LARGE`, async () => {
      const message = wrap(crLf(await encrypt(new Uint8Array(8 * MiB))));
      assert.ok(message.length < 64 * 1024, `the message has ${message.length} bytes`);
      await assert.rejects(
        decryptPgpMime({ message, privateKeys: [{ armored: agency.privateKey }], maxBytes: MiB }),
        isStoppedInflating,
      );
    });

    it(`opens ${what} that inflates to no more than maxBytes`, async () => {
      const entity = sampleEntity('x'.repeat(256 * 1024));
      const opened = await decryptPgpMime({
        message: wrap(crLf(await encrypt(entity))),
        privateKeys: [{ armored: agency.privateKey }],
        maxBytes: MiB,
      });
      assert.deepEqual(opened.plaintext, entity);
    });
  }

  it('refuses without maxBytes beyond DEFAULT_MAX_DECRYPTED_BYTES (SMGW_MAX_MESSAGE_BYTES)', async () => {
    const armored = await compressedWithOpenpgp('zlib')(new Uint8Array(DEFAULT_MAX_DECRYPTED_BYTES + 1));
    await assert.rejects(
      decryptPgpMime({ message: wrapAsInline(crLf(armored)), privateKeys: [{ armored: agency.privateKey }] }),
      isStoppedInflating,
    );
  });

  it('refuses inline PGP whose text/plain entity (base64) outgrows maxBytes', async () => {
    const armored = await compressedWithOpenpgp('zlib')(Buffer.alloc(900 * 1024, 'a'));
    await assert.rejects(
      decryptPgpMime({
        message: wrapAsInline(crLf(armored)),
        privateKeys: [{ armored: agency.privateKey }],
        maxBytes: MiB,
      }),
      isTooLarge,
    );
  });
});
