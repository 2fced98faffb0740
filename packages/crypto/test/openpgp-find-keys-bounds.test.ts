// Harvesting on hostile messages: key blocks are found in one pass over the text, one message offers a bounded
// number of keys (each becomes a pending key in the directory) from a bounded number of blocks, and each key is
// bounded in size, user IDs, subkeys and self-signatures before any signature of it is verified.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import {
  HARVEST_WALK_LIMITS,
  HARVESTED_KEY_LIMITS,
  MAX_KEY_SOURCES_PER_MESSAGE,
  MAX_KEYS_PER_MESSAGE,
  publicKeyBlocks,
} from '../src/openpgp/find-pgp-keys.ts';
import { findPgpKeysInMessage, PgpKeyBeyondLimitsError } from '../src/openpgp/index.ts';
import { costlyKeyMaterial, inspectPublicKey } from '../src/openpgp/inspect-public-key.ts';

const BEGIN = '-----BEGIN PGP PUBLIC KEY BLOCK-----';
const END = '-----END PGP PUBLIC KEY BLOCK-----';

function messageWithAttachment(body: string): Buffer {
  const boundary = 'b-keys-1';
  return Buffer.from(
    'From: sender@example.net\r\nTo: agency@example.gov\r\nMIME-Version: 1.0\r\n' +
      `Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n` +
      `--${boundary}\r\nContent-Type: text/plain\r\n\r\nHello\r\n` +
      `--${boundary}\r\nContent-Type: application/pgp-keys\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}\r\n` +
      `--${boundary}--\r\n`,
    'latin1',
  );
}

describe('publicKeyBlocks', () => {
  const cases: Array<{ what: string; text: string; blocks: string[] }> = [
    { what: 'nothing in plain text', text: 'Hallo', blocks: [] },
    {
      what: 'two blocks, without the text around them',
      text: `a ${BEGIN}1${END} b ${BEGIN}2${END} c`,
      blocks: [`${BEGIN}1${END}`, `${BEGIN}2${END}`],
    },
    {
      what: 'a BEGIN inside a block as part of it',
      text: `${BEGIN}x${BEGIN}y${END}`,
      blocks: [`${BEGIN}x${BEGIN}y${END}`],
    },
    { what: 'nothing after a BEGIN without END', text: `${BEGIN}1${END}${BEGIN}2`, blocks: [`${BEGIN}1${END}`] },
    { what: 'nothing from an END before any BEGIN', text: `${END}${BEGIN}1`, blocks: [] },
  ];
  for (const { what, text, blocks } of cases) {
    it(`finds ${what}`, () => {
      assert.deepEqual([...publicKeyBlocks(text)], blocks);
    });
  }
});

describe('findPgpKeysInMessage on hostile messages', { timeout: 60_000 }, () => {
  let keys: string[];

  before(async () => {
    keys = [];
    for (let i = 0; i < MAX_KEYS_PER_MESSAGE + 4; i++) {
      const { publicKey } = await openpgp.generateKey({
        type: 'ecc',
        curve: 'curve25519Legacy',
        userIDs: [{ email: `key${i}@example.net` }],
        format: 'armored',
      });
      keys.push(publicKey);
    }
  });

  // The regex it replaced rescanned the rest of the text from every unterminated BEGIN line: 5 MB took about 70 s.
  it('reads 5 MB of unterminated BEGIN lines in one pass and finds nothing', async () => {
    const body = `${BEGIN}\r\n`.repeat(Math.ceil((5 * 1024 * 1024) / (BEGIN.length + 2)));
    assert.deepEqual(await findPgpKeysInMessage(messageWithAttachment(body)), []);
  });

  it(`keeps the first ${MAX_KEYS_PER_MESSAGE} keys of a message offering more, one block each`, async () => {
    const found = await findPgpKeysInMessage(messageWithAttachment(keys.join('\r\n')));
    assert.equal(found.length, MAX_KEYS_PER_MESSAGE);
    const expected = await Promise.all(
      keys.slice(0, MAX_KEYS_PER_MESSAGE).map((armoredKey) => openpgp.readKey({ armoredKey })),
    );
    assert.deepEqual(
      found.map((key) => key.fingerprint),
      expected.map((key) => key.getFingerprint().toUpperCase()),
    );
  });

  it(`keeps the first ${MAX_KEYS_PER_MESSAGE} keys of a key ring in one block`, async () => {
    const ring = await Promise.all(keys.map((armoredKey) => openpgp.readKey({ armoredKey })));
    const packets = new openpgp.PacketList();
    for (const key of ring) packets.push(...key.toPacketList());
    const armored = openpgp.armor(openpgp.enums.armor.publicKey, packets.write());
    assert.equal((await openpgp.readKeys({ armoredKeys: armored })).length, keys.length);
    const found = await findPgpKeysInMessage(messageWithAttachment(armored));
    assert.equal(found.length, MAX_KEYS_PER_MESSAGE);
  });

  it('reads the key after a text part of 5 MB of bare line feeds, whose text is never decoded', async () => {
    const message = Buffer.from(
      'From: sender@example.net\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n' +
        `--b\r\n\r\n${'\n'.repeat(5 * 1024 * 1024)}\r\n` +
        `--b\r\nContent-Type: application/pgp-keys\r\n\r\n${keys[0]?.replace(/\r?\n/g, '\r\n')}\r\n--b--\r\n`,
      'latin1',
    );
    assert.equal((await findPgpKeysInMessage(message)).length, 1);
  });

  it(`walks at most ${HARVEST_WALK_LIMITS.maxParts} parts: a key after them is not read`, async () => {
    const keyPart = `--b\r\nContent-Type: application/pgp-keys\r\n\r\n${keys[0]?.replace(/\r?\n/g, '\r\n')}\r\n`;
    const message = (emptyParts: number) =>
      Buffer.from(
        'From: sender@example.net\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n' +
          `${'--b\r\n\r\nx\r\n'.repeat(emptyParts)}${keyPart}--b--\r\n`,
        'latin1',
      );
    assert.equal((await findPgpKeysInMessage(message(HARVEST_WALK_LIMITS.maxParts - 1))).length, 1);
    assert.equal((await findPgpKeysInMessage(message(HARVEST_WALK_LIMITS.maxParts))).length, 0);
  });

  it('ends the walk at a part header beyond the budget of header lines: nothing after it is read', async () => {
    const keyPart = `--b\r\nContent-Type: application/pgp-keys\r\n\r\n${keys[0]?.replace(/\r?\n/g, '\r\n')}\r\n`;
    const message = Buffer.from(
      'From: sender@example.net\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n' +
        `--b\r\n${'X-A: b\r\n'.repeat(100_001)}\r\nx\r\n${keyPart}--b--\r\n`,
      'latin1',
    );
    assert.deepEqual(await findPgpKeysInMessage(message), []);
  });

  it(`reads no more than ${MAX_KEY_SOURCES_PER_MESSAGE} blocks, readable or not`, async () => {
    const garbage = `${BEGIN}\r\n\r\nnot a key\r\n${END}\r\n`.repeat(MAX_KEY_SOURCES_PER_MESSAGE);
    assert.deepEqual(await findPgpKeysInMessage(messageWithAttachment(garbage + keys[0])), []);
    const fewer = `${BEGIN}\r\n\r\nnot a key\r\n${END}\r\n`.repeat(MAX_KEY_SOURCES_PER_MESSAGE - 1);
    assert.equal((await findPgpKeysInMessage(messageWithAttachment(fewer + keys[0]))).length, 1);
  });
});

describe('findPgpKeysInMessage on keys larger than a person uses', { timeout: 120_000 }, () => {
  const generate = async (userIds: number, subkeys = 0): Promise<string> =>
    (
      await openpgp.generateKey({
        type: 'ecc',
        curve: 'curve25519Legacy',
        userIDs: Array.from({ length: userIds }, (_, i) => ({ name: `n${i}`, email: `u${i}@example.net` })),
        subkeys: Array.from({ length: subkeys + 1 }, () => ({})),
        format: 'armored',
      })
    ).publicKey;
  const found = async (armored: string) => (await findPgpKeysInMessage(messageWithAttachment(armored))).length;

  it(`keeps a key with ${HARVESTED_KEY_LIMITS.userIds} user IDs and ${HARVESTED_KEY_LIMITS.subkeys} subkeys`, async () => {
    assert.equal(await found(await generate(HARVESTED_KEY_LIMITS.userIds, HARVESTED_KEY_LIMITS.subkeys - 1)), 1);
  });

  it('skips a key with one user ID or one subkey too many', async () => {
    assert.equal(await found(await generate(HARVESTED_KEY_LIMITS.userIds + 1)), 0);
    assert.equal(await found(await generate(1, HARVESTED_KEY_LIMITS.subkeys)), 0);
  });

  it('refuses in inspectPublicKey withinLimits (the portal) what harvesting skips, and takes what it keeps', async () => {
    const over = await generate(HARVESTED_KEY_LIMITS.userIds + 1);
    await assert.rejects(inspectPublicKey(over, { withinLimits: true }), PgpKeyBeyondLimitsError);
    await assert.rejects(inspectPublicKey(await generate(1, HARVESTED_KEY_LIMITS.subkeys), { withinLimits: true }), {
      message: /subkeys/,
    });
    const fits = await generate(HARVESTED_KEY_LIMITS.userIds, HARVESTED_KEY_LIMITS.subkeys - 1);
    assert.equal((await inspectPublicKey(fits, { withinLimits: true })).userIds.length, HARVESTED_KEY_LIMITS.userIds);
    assert.equal((await inspectPublicKey(over)).userIds.length, HARVESTED_KEY_LIMITS.userIds + 1, 'an operator’s');
  });

  it('skips a key with more self-signatures than allowed on few user IDs', async () => {
    // The same user ID certified again and again: every certification is verified while choosing the primary user.
    const key = await openpgp.readKey({ armoredKey: await generate(1) });
    const [user] = key.users;
    assert.ok(user);
    const [certification] = user.selfCertifications;
    assert.ok(certification);
    user.selfCertifications.push(...Array(HARVESTED_KEY_LIMITS.selfSignatures).fill(certification));
    assert.equal(await found(key.armor()), 0);
  });

  it('skips DSA key material and RSA of a huge exponent before any signature is checked, and refuses them on upload', async () => {
    // openpgp checks DSA in plain JavaScript with no bound on its numbers: a 65,535-bit p made one check tens of seconds.
    const home = mkdtempSync(join(tmpdir(), 'smgw-gpg-dsa-'));
    try {
      const gpg = (...args: string[]) =>
        execFileSync('gpg', ['--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args]);
      gpg('--quick-gen-key', 'Alt <alt@example.net>', 'dsa2048', 'sign', 'never');
      const dsa = gpg('--armor', '--export', 'alt@example.net').toString('latin1');
      assert.equal(await found(dsa), 0);
      await assert.rejects(inspectPublicKey(dsa), { code: 'PGP_KEY_MALFORMED', message: /dsa key material/ });
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
    const rsa = await openpgp.readKey({
      armoredKey: (await openpgp.generateKey({ type: 'rsa', rsaBits: 2048, userIDs: [{ email: 'r@example.net' }] }))
        .publicKey,
    });
    assert.equal(costlyKeyMaterial(rsa), undefined);
    (rsa.keyPacket as unknown as { publicParams: { e: Uint8Array } }).publicParams.e = new Uint8Array(5).fill(1);
    assert.equal(costlyKeyMaterial(rsa), 'an RSA exponent over 32 bits');
    assert.equal(await found(rsa.armor()), 0);
  });

  it(`skips a key over ${HARVESTED_KEY_LIMITS.bytes / 1024} KiB without reading it: 6,000 user IDs in 1.9 MiB`, async () => {
    const huge = await generate(6000);
    assert.ok(huge.length > 1024 * 1024, `${huge.length} bytes`);
    const started = performance.now();
    assert.equal(await found(huge), 0);
    const ms = performance.now() - started;
    // Read and verified, this key took seconds; skipped unread, the time is the walk's alone.
    assert.ok(ms < 1000, `${Math.round(ms)} ms`);
  });
});
