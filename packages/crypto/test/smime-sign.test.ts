// Signing with an agency's key: what we sign, the real openssl verifies (signature, certificate, content).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createDetachedSignature, SmimeError, signMultipart } from '../src/smime/index.ts';
import { createOpensslWorkspace, type OpensslWorkspace } from './smime-openssl.ts';

const ENTITY = Buffer.from(
  'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n' +
    'Sehr geehrte Frau M=C3=BCller,\r\nanbei der Bescheid.\r\n',
);

describe('signMultipart', () => {
  let ws: OpensslWorkspace;
  const signers: Record<string, { cert: string; key: string; certPem: string; keyPem: string }> = {};

  before(async () => {
    ws = await createOpensslWorkspace();
    for (const [name, newKey] of [
      ['rsa', ['-newkey', 'rsa:3072']],
      ['p256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']],
    ] as const) {
      await ws.openssl([
        'req',
        '-x509',
        ...newKey,
        '-nodes',
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.crt`,
        '-subj',
        `/CN=Poststelle ${name}/O=SMGW Test`,
        '-days',
        '2',
        '-sha256',
        '-addext',
        'keyUsage=critical,digitalSignature,nonRepudiation',
        '-addext',
        'extendedKeyUsage=emailProtection',
        '-addext',
        `subjectAltName=email:poststelle-${name}@behoerde.example`,
      ]);
      const { readFile } = await import('node:fs/promises');
      signers[name] = {
        cert: `${ws.dir}/${name}.crt`,
        key: `${ws.dir}/${name}.key`,
        certPem: await readFile(`${ws.dir}/${name}.crt`, 'utf8'),
        keyPem: await readFile(`${ws.dir}/${name}.key`, 'utf8'),
      };
    }
  });
  after(async () => {
    await ws?.remove();
  });

  for (const name of ['rsa', 'p256']) {
    it(`makes a multipart/signed message that openssl verifies and opens to the same entity (${name})`, async () => {
      const signer = signers[name];
      assert.ok(signer);
      const signed = await signMultipart({
        entity: ENTITY,
        key: { certificate: signer.certPem, privateKey: signer.keyPem },
        signingTime: new Date(),
      });
      assert.match(
        signed.toString(),
        /^Content-Type: multipart\/signed; protocol="application\/pkcs7-signature"; micalg=sha-256;/,
      );
      const file = await ws.file(`signed-${name}.eml`, signed);
      const content = await ws.openssl([
        'cms',
        '-verify',
        '-in',
        file,
        '-CAfile',
        signer.cert,
        '-purpose',
        'smimesign',
      ]);
      assert.ok(content.equals(ENTITY), 'openssl gives back exactly the signed entity');
    });
  }

  it('is refused by openssl once the signed entity is changed', async () => {
    const signer = signers.rsa;
    assert.ok(signer);
    const signed = await signMultipart({
      entity: ENTITY,
      key: { certificate: signer.certPem, privateKey: signer.keyPem },
      signingTime: new Date(),
    });
    const tampered = Buffer.from(
      signed.toString('latin1').replace('anbei der Bescheid', 'anbei die Rechnung'),
      'latin1',
    );
    const file = await ws.file('tampered.eml', tampered);
    await assert.rejects(ws.openssl(['cms', '-verify', '-in', file, '-CAfile', signer.cert, '-purpose', 'smimesign']));
  });

  it('refuses a key that does not belong to the certificate, and a digest that is not SHA-256', async () => {
    const { rsa, p256 } = signers;
    assert.ok(rsa && p256);
    await assert.rejects(
      createDetachedSignature({
        contentDigest: createHash('sha1').update(ENTITY).digest(),
        key: { certificate: rsa.certPem, privateKey: rsa.keyPem },
        signingTime: new Date(),
      }),
      SmimeError,
    );
    await assert.rejects(
      signMultipart({
        entity: ENTITY,
        key: { certificate: rsa.certPem, privateKey: 'not a key' },
        signingTime: new Date(),
      }),
      (err: unknown) => err instanceof SmimeError && err.code === 'SMIME_INVALID_KEY',
    );
  });
});
