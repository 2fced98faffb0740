// An agency key exported by `openssl pkcs12 -export` loads with parsePkcs12 and opens mail encrypted to it.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decryptEnveloped, parsePkcs12, SmimeError } from '../src/smime/index.ts';
import { createOpensslWorkspace, type OpensslWorkspace, type TestIdentity } from './smime-openssl.ts';

const PASSWORD = 'Geheim für die Poststelle';
const entity = Buffer.from('Content-Type: text/plain\r\n\r\nnur für das Amt\r\n');

describe('parsePkcs12', () => {
  let ws: OpensslWorkspace;
  let rsa: TestIdentity;
  let ec: TestIdentity;

  before(async () => {
    ws = await createOpensslWorkspace();
    rsa = await ws.identity('rsa-3072', 'agency-rsa');
    ec = await ws.identity('p-256', 'agency-ec');
  });
  after(async () => {
    await ws.remove();
  });

  async function export12(id: TestIdentity, options: string[] = []): Promise<Buffer> {
    const path = join(ws.dir, `${id.name}-${options.join('')}.p12`);
    await ws.openssl([
      'pkcs12',
      '-export',
      '-inkey',
      id.keyPath,
      '-in',
      id.certificatePath,
      '-out',
      path,
      '-passout',
      `pass:${PASSWORD}`,
      ...options,
    ]);
    return readFile(path);
  }

  for (const [what, options] of [
    ['OpenSSL 3 defaults (PBES2, AES-256, HMAC-SHA-256)', []],
    ['unencrypted bags', ['-keypbe', 'NONE', '-certpbe', 'NONE']],
  ] as const) {
    it(`loads an RSA and an EC key with their certificates from ${what}`, async () => {
      for (const id of [rsa, ec]) {
        const { keys, certificates } = await parsePkcs12(await export12(id, [...options]), PASSWORD);
        assert.equal(keys.length, 1);
        assert.equal(certificates.length, 1);
        const message = await ws.openssl([
          'cms',
          '-encrypt',
          '-aes256',
          '-in',
          await ws.file('entity.eml', entity),
          '-recip',
          id.certificatePath,
        ]);
        assert.deepEqual(await decryptEnveloped({ message, keys }), entity);
      }
    });
  }

  it('answers SMIME_PKCS12_FAILED for a wrong password, garbage, and the legacy RC2 encryption pkijs lacks', async () => {
    const isPkcs12Failure = (error: unknown) => error instanceof SmimeError && error.code === 'SMIME_PKCS12_FAILED';
    await assert.rejects(parsePkcs12(await export12(rsa), 'falsch'), isPkcs12Failure);
    await assert.rejects(parsePkcs12(Buffer.from('no pkcs12 here'), PASSWORD), isPkcs12Failure);
    await assert.rejects(parsePkcs12(await export12(rsa, ['-legacy']), PASSWORD), isPkcs12Failure);
  });
});
