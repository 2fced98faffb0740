// What the real `openssl cms -encrypt` produces for an agency key, decryptEnveloped opens.
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { decryptEnveloped } from '../src/smime/index.ts';
import { createOpensslWorkspace, type KeySpec, type OpensslWorkspace, type TestIdentity } from './smime-openssl.ts';

const entity = Buffer.from(
  'Content-Type: text/plain; charset=utf-8\r\n\r\nAntrag auf Akteneinsicht, bitte vertraulich behandeln.\r\n',
  'utf8',
);

describe('decryptEnveloped, opening what openssl cms -encrypt produces', () => {
  let ws: OpensslWorkspace;
  let entityPath: string;
  const ids = new Map<KeySpec, TestIdentity>();

  before(async () => {
    ws = await createOpensslWorkspace();
    entityPath = await ws.file('entity.eml', entity);
    const specs: KeySpec[] = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'p-256', 'p-384'];
    for (const spec of specs) ids.set(spec, await ws.identity(spec));
  });
  after(async () => {
    await ws.remove();
  });

  const id = (spec: KeySpec): TestIdentity => {
    const found = ids.get(spec);
    assert.ok(found);
    return found;
  };
  const keysOf = (recipient: TestIdentity) => [{ certificate: recipient.certificatePem, privateKey: recipient.keyPem }];

  const cases: Array<{ spec: KeySpec; what: string; options: string[] }> = [
    { spec: 'rsa-2048', what: 'its defaults (PKCS#1 v1.5, 3DES)', options: [] },
    { spec: 'rsa-3072', what: 'its defaults (PKCS#1 v1.5, 3DES)', options: [] },
    { spec: 'rsa-4096', what: 'its defaults (PKCS#1 v1.5, 3DES)', options: [] },
    { spec: 'rsa-2048', what: '-aes256', options: ['-aes256'] },
    { spec: 'rsa-3072', what: '-aes128', options: ['-aes128'] },
    { spec: 'rsa-3072', what: 'OAEP with its SHA-1 default', options: ['-aes256', '-keyopt', 'rsa_padding_mode:oaep'] },
    {
      spec: 'rsa-4096',
      what: 'OAEP with SHA-256',
      options: ['-aes256', '-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha256'],
    },
    { spec: 'rsa-3072', what: '-aes-256-gcm (AuthEnvelopedData)', options: ['-aes-256-gcm'] },
    { spec: 'p-256', what: 'its defaults (ECDH stdDH-sha1kdf, 3DES key wrap)', options: [] },
    { spec: 'p-256', what: '-aes256 (ECDH stdDH-sha1kdf, AES-256 key wrap)', options: ['-aes256'] },
    { spec: 'p-384', what: '-aes256', options: ['-aes256'] },
    { spec: 'p-256', what: 'ECDH stdDH-sha256kdf', options: ['-aes256', '-keyopt', 'ecdh_kdf_md:sha256'] },
    { spec: 'p-384', what: '-aes-256-gcm (AuthEnvelopedData)', options: ['-aes-256-gcm'] },
  ];
  for (const { spec, what, options } of cases) {
    it(`opens ${spec} with ${what}`, async () => {
      const recipient = id(spec);
      // -keyopt applies to the -recip before it.
      const message = await ws.openssl([
        'cms',
        '-encrypt',
        '-in',
        entityPath,
        '-recip',
        recipient.certificatePath,
        ...options,
      ]);
      assert.deepEqual(await decryptEnveloped({ message, keys: keysOf(recipient) }), entity);
    });
  }

  it('opens DER and PEM output, the body alone, and a stream', async () => {
    const recipient = id('rsa-2048');
    const keys = keysOf(recipient);
    const base = ['cms', '-encrypt', '-aes256', '-in', entityPath, '-recip', recipient.certificatePath];
    const der = await ws.openssl([...base, '-outform', 'DER']);
    assert.deepEqual(await decryptEnveloped({ message: der, keys }), entity);
    const pem = await ws.openssl([...base, '-outform', 'PEM']);
    assert.deepEqual(await decryptEnveloped({ message: pem.toString('latin1'), keys }), entity);
    const mime = (await ws.openssl(base)).toString('latin1');
    const body = mime.slice(mime.indexOf('\n\n') + 2);
    assert.deepEqual(await decryptEnveloped({ message: body, keys }), entity);
    const path = await ws.file('stream.p7m', mime);
    assert.deepEqual(await decryptEnveloped({ message: createReadStream(path), keys }), entity);
  });

  it('opens a message for several recipients with the one key it holds, found by subjectKeyIdentifier too', async () => {
    const ours = id('p-384');
    const message = await ws.openssl([
      'cms',
      '-encrypt',
      '-aes256',
      '-keyid',
      '-in',
      entityPath,
      '-recip',
      id('rsa-2048').certificatePath,
      '-recip',
      id('p-256').certificatePath,
      '-recip',
      ours.certificatePath,
    ]);
    assert.deepEqual(await decryptEnveloped({ message, keys: keysOf(ours) }), entity);
  });

  it('opens RSA key transport addressed by subjectKeyIdentifier', async () => {
    const ours = id('rsa-3072');
    const message = await ws.openssl([
      'cms',
      '-encrypt',
      '-aes256',
      '-keyid',
      '-in',
      entityPath,
      '-recip',
      ours.certificatePath,
    ]);
    assert.deepEqual(await decryptEnveloped({ message, keys: keysOf(ours) }), entity);
  });

  it('takes the private key as a KeyObject and picks the right one of several keys', async () => {
    const ours = id('rsa-4096');
    const message = await ws.openssl(['cms', '-encrypt', '-aes256', '-in', entityPath, '-recip', ours.certificatePath]);
    const keys = [
      { certificate: id('p-256').certificatePem, privateKey: createPrivateKey(id('p-256').keyPem) },
      { certificate: ours.certificatePem, privateKey: createPrivateKey(ours.keyPem) },
    ];
    assert.deepEqual(await decryptEnveloped({ message, keys }), entity);
  });
});
