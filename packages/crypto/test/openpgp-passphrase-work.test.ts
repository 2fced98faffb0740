// A protected private key says how much work its passphrase takes (Argon2 passes and memory, iterated S2K bytes) for
// each of its (sub)keys; the key comes from outside (an agency's file), and openpgp.js does that work without
// yielding. unlockPrivateKey counts it against PASSPHRASE_WORK_LIMITS before it unlocks anything.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { PgpError } from '../src/openpgp/errors.ts';
import { readPrivateKeyForStorage } from '../src/openpgp/private-keys.ts';

const PASSPHRASE = 'Geheim für die Poststelle';

interface S2kParameters {
  c?: number;
  t?: number;
  encodedM?: number;
}

/** The key armored after its packets' S2K parameters were changed (what a stranger's file may say). */
function withS2k(key: openpgp.PrivateKey, parameters: S2kParameters): string {
  for (const { keyPacket } of [key, ...key.subkeys]) {
    Object.assign((keyPacket as unknown as { s2k: S2kParameters }).s2k, parameters);
  }
  return key.armor();
}

async function protectedKey(config: Partial<openpgp.Config>, subkeys = 1): Promise<openpgp.PrivateKey> {
  const { privateKey } = await openpgp.generateKey({
    userIDs: [{ email: 'poststelle@fa-nord.example' }],
    subkeys: Array.from({ length: subkeys }, () => ({})),
    passphrase: PASSPHRASE,
    format: 'object',
    config,
  });
  return privateKey;
}

const argon2 = (passes: number, memoryExponent: number): Partial<openpgp.Config> => ({
  aeadProtect: true,
  s2kType: openpgp.enums.s2k.argon2,
  s2kArgon2Params: { passes, parallelism: 1, memoryExponent },
});

async function refusedQuickly(armored: string, why: RegExp): Promise<void> {
  await assert.rejects(
    readPrivateKeyForStorage({ armored, passphrase: PASSPHRASE }),
    (error: unknown) =>
      error instanceof PgpError && error.code === 'PGP_PRIVATE_KEY_UNUSABLE' && why.test(error.message),
  );
  // Refused by the count (the message names the limit), which runs before any passphrase work: no time is asserted.
}

describe('passphrase work of a protected private key', () => {
  it('unlocks keys protected the usual ways (iterated S2K as GnuPG writes it, Argon2 with small settings)', async () => {
    for (const config of [{ s2kIterationCountByte: 255 }, argon2(1, 10)]) {
      const key = await readPrivateKeyForStorage({
        armored: (await protectedKey(config)).armor(),
        passphrase: PASSPHRASE,
      });
      assert.equal(key.canDecrypt, true);
    }
  });

  it('refuses Argon2 asking for more memory than allowed (256 MiB per key here), before filling it', async () => {
    await refusedQuickly(withS2k(await protectedKey(argon2(1, 10)), { t: 1, encodedM: 18 }), /KiB of Argon2 memory/);
  });

  it('refuses Argon2 asking for 20 passes over 64 MiB for each of two keys, before the first pass', async () => {
    await refusedQuickly(withS2k(await protectedKey(argon2(1, 10)), { t: 20, encodedM: 16 }), /of passphrase work/);
  });

  it('refuses a key with 17 subkeys, each with the largest iterated S2K count, before hashing', async () => {
    const key = await protectedKey({ s2kIterationCountByte: 0 }, 17);
    await refusedQuickly(withS2k(key, { c: 255 }), /of passphrase work/);
  });
});
