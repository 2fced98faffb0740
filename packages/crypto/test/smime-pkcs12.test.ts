// An agency key exported by `openssl pkcs12 -export` loads with parsePkcs12 and opens mail encrypted to it.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { decryptEnveloped, parsePkcs12, SmimeError } from '../src/smime/index.ts';
import { iterationsOfPasswordScheme } from '../src/smime/pkcs12.ts';
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

  it('answers SMIME_PKCS12_FAILED for a certificate pkijs reads but Node cannot (a public key of an unknown algorithm)', async () => {
    const signing = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const certificate = new pkijs.Certificate();
    certificate.version = 2;
    certificate.serialNumber = new asn1js.Integer({ value: 7 });
    const name = new pkijs.AttributeTypeAndValue({ type: '2.5.4.3', value: new asn1js.Utf8String({ value: 'Amt' }) });
    certificate.issuer.typesAndValues.push(name);
    certificate.subject.typesAndValues.push(name);
    certificate.notBefore.value = new Date('2025-01-01T00:00:00Z');
    certificate.notAfter.value = new Date('2035-01-01T00:00:00Z');
    certificate.subjectPublicKeyInfo = new pkijs.PublicKeyInfo({
      algorithm: new pkijs.AlgorithmIdentifier({ algorithmId: '1.3.6.1.4.1.55555.1' }),
      subjectPublicKey: new asn1js.BitString({ valueHex: new Uint8Array(32).fill(5) }),
    });
    await certificate.sign(signing.privateKey, 'SHA-256');
    const der = Buffer.from(certificate.toSchema().toBER(false));
    const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`;
    const path = join(ws.dir, 'unknown-key.p12');
    await ws.openssl([
      'pkcs12',
      '-export',
      '-nokeys',
      '-in',
      await ws.file('unknown-key.pem', pem),
      '-out',
      path,
      '-passout',
      `pass:${PASSWORD}`,
    ]);
    await assert.rejects(parsePkcs12(await readFile(path), PASSWORD), {
      name: 'SmimeError',
      code: 'SMIME_PKCS12_FAILED',
    });
  });

  // The file comes from an agency; its password steps run without yielding (the MAC in JavaScript, the keys in
  // OpenSSL), about a microsecond per iteration: 2^31 iterations held the event loop for the better part of an hour.
  describe('iteration counts the file declares', () => {
    const isTooManyIterations = (error: unknown) =>
      error instanceof SmimeError && error.code === 'SMIME_PKCS12_FAILED' && /password iterations/.test(error.message);

    async function refusedQuickly(file: Buffer): Promise<void> {
      // The count runs before any key derivation; the message it gives says so (no time is asserted).
      await assert.rejects(parsePkcs12(file, PASSWORD), isTooManyIterations);
    }

    it('refuses a shrouded key asking for 1,200,000 iterations before deriving its key', async () => {
      await refusedQuickly(await export12(rsa, ['-certpbe', 'NONE', '-nomaciter', '-iter', '1200000']));
    });

    it('refuses a MAC asking for 1,200,000 iterations before computing it', async () => {
      await refusedQuickly(await export12(rsa, ['-keypbe', 'NONE', '-certpbe', 'NONE', '-iter', '1200000']));
    });

    it('reads a count as written, also from 2^23 on (pkijs reads those as 0)', () => {
      const pbkdf2 = (count: number[]) =>
        new pkijs.AlgorithmIdentifier({
          algorithmId: '1.2.840.113549.1.5.13',
          algorithmParams: new asn1js.Sequence({
            value: [
              new pkijs.AlgorithmIdentifier({
                algorithmId: '1.2.840.113549.1.5.12',
                algorithmParams: new asn1js.Sequence({
                  value: [
                    new asn1js.OctetString({ valueHex: new Uint8Array(16) }),
                    new asn1js.Integer({ valueHex: new Uint8Array(count) }),
                  ],
                }),
              }).toSchema(),
              new pkijs.AlgorithmIdentifier({
                algorithmId: '2.16.840.1.101.3.4.1.42',
                algorithmParams: new asn1js.OctetString({ valueHex: new Uint8Array(16) }),
              }).toSchema(),
            ],
          }),
        });
      assert.equal(iterationsOfPasswordScheme(pbkdf2([0x08, 0x00]), 'a key'), 2048n);
      assert.equal(iterationsOfPasswordScheme(pbkdf2([0x00, 0x80, 0x00, 0x00, 0x00]), 'a key'), 2n ** 31n);
      assert.equal(
        iterationsOfPasswordScheme(pbkdf2([0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 'a key'),
        2n ** 64n - 1n,
      );
    });

    it('loads the counts exporters use (OpenSSL 2,048 by default, 100,000 here)', async () => {
      const { keys } = await parsePkcs12(await export12(ec, ['-iter', '100000']), PASSWORD);
      assert.equal(keys.length, 1);
    });

    it('refuses a key derivation without an iteration count (scrypt, whose cost parameter p has no bound)', async () => {
      const encryptedKey = await ws.openssl([
        'pkcs8',
        '-topk8',
        '-scrypt',
        '-in',
        ec.keyPath,
        '-outform',
        'DER',
        '-passout',
        `pass:${PASSWORD}`,
      ]);
      const { encryptionAlgorithm } = pkijs.PKCS8ShroudedKeyBag.fromBER(encryptedKey);
      assert.throws(
        () => iterationsOfPasswordScheme(encryptionAlgorithm, 'a shrouded key'),
        (error: unknown) => error instanceof SmimeError && /PBKDF2 only/.test(error.message),
      );
    });
  });
});
