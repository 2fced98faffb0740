// What encryptEnveloped produces, the real `openssl cms -decrypt` opens, giving back the exact entity.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { type ContentCipher, encryptEnveloped, type KeyTransport } from '../src/smime/index.ts';
import { createOpensslWorkspace, type KeySpec, type OpensslWorkspace, type TestIdentity } from './smime-openssl.ts';

const entity = Buffer.from(
  'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' +
    'Sehr geehrte Damen und Herren,\r\nanbei der Bescheid. Grüße aus dem Amt.\r\n',
  'utf8',
);
const headers = {
  From: 'poststelle@amt.example',
  To: 'buerger@extern.example',
  Subject: 'Bescheid',
  Date: 'Sat, 28 Nov 2026 08:00:00 +0000',
  'Message-ID': '<bescheid-1@amt.example>',
};

describe('encryptEnveloped, opened by openssl cms -decrypt', () => {
  let ws: OpensslWorkspace;
  const ids = new Map<KeySpec, TestIdentity>();

  before(async () => {
    ws = await createOpensslWorkspace();
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

  async function opensslDecrypt(message: Buffer, recipient: TestIdentity, name: string): Promise<Buffer> {
    const path = await ws.file(name, message);
    return ws.openssl([
      'cms',
      '-decrypt',
      '-in',
      path,
      '-inkey',
      recipient.keyPath,
      '-recip',
      recipient.certificatePath,
    ]);
  }

  const cases: Array<{ spec: KeySpec; keyTransport?: KeyTransport; contentCipher: ContentCipher }> = [
    { spec: 'rsa-2048', keyTransport: 'rsa-pkcs1v15', contentCipher: 'aes-256-cbc' },
    { spec: 'rsa-2048', keyTransport: 'rsa-oaep-sha256', contentCipher: 'aes-256-cbc' },
    { spec: 'rsa-3072', keyTransport: 'rsa-pkcs1v15', contentCipher: 'aes-256-cbc' },
    { spec: 'rsa-3072', keyTransport: 'rsa-oaep-sha256', contentCipher: 'aes-256-cbc' },
    { spec: 'rsa-4096', keyTransport: 'rsa-pkcs1v15', contentCipher: 'aes-256-cbc' },
    { spec: 'rsa-4096', keyTransport: 'rsa-oaep-sha256', contentCipher: 'aes-256-cbc' },
    { spec: 'p-256', contentCipher: 'aes-256-cbc' },
    { spec: 'p-384', contentCipher: 'aes-256-cbc' },
    { spec: 'rsa-3072', keyTransport: 'rsa-pkcs1v15', contentCipher: 'aes-256-gcm' },
    { spec: 'rsa-3072', keyTransport: 'rsa-oaep-sha256', contentCipher: 'aes-256-gcm' },
    { spec: 'p-256', contentCipher: 'aes-256-gcm' },
    { spec: 'p-384', contentCipher: 'aes-256-gcm' },
  ];
  for (const { spec, keyTransport, contentCipher } of cases) {
    it(`gives back the exact entity for ${spec}${keyTransport ? ` with ${keyTransport}` : ' (ECDH)'} and ${contentCipher}`, async () => {
      const recipient = id(spec);
      const message = await buffer(
        encryptEnveloped({
          content: entity,
          recipients: [{ certificate: recipient.certificatePem, ...(keyTransport ? { keyTransport } : {}) }],
          contentCipher,
          headers,
        }),
      );
      const opened = await opensslDecrypt(message, recipient, `${spec}-${keyTransport}-${contentCipher}.eml`);
      assert.deepEqual(opened, entity);
    });
  }

  it('writes the outer headers, the S/MIME content type and base64 in lines of at most 76 characters', async () => {
    const message = (
      await buffer(
        encryptEnveloped({ content: entity, recipients: [{ certificate: id('rsa-2048').certificatePem }], headers }),
      )
    ).toString('latin1');
    const [head, body] = message.split('\r\n\r\n') as [string, string];
    assert.match(head, /^From: poststelle@amt\.example\r\nTo: buerger@extern\.example\r\nSubject: Bescheid\r\n/);
    assert.match(head, /\r\nMessage-ID: <bescheid-1@amt\.example>\r\nMIME-Version: 1\.0\r\n/);
    assert.match(head, /\r\nContent-Type: application\/pkcs7-mime; smime-type=enveloped-data; name=smime\.p7m\r\n/);
    assert.match(head, /\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=smime\.p7m/);
    const lines = body.split('\r\n');
    assert.equal(lines.pop(), '');
    for (const line of lines) assert.match(line, /^[A-Za-z0-9+/=]{1,76}$/);
    assert.ok(lines.slice(0, -1).every((line) => line.length === 76));
  });

  it('writes MIME-Version 1.0 itself, never the free text of a given one', async () => {
    const message = (
      await buffer(
        encryptEnveloped({
          content: entity,
          recipients: [{ certificate: id('rsa-2048').certificatePem }],
          headers: [...Object.entries(headers), ['MIME-Version', '1.0 (Az. 4711 Pfaendung Mueller)']],
        }),
      )
    ).toString('latin1');
    const head = message.slice(0, message.indexOf('\r\n\r\n'));
    assert.equal(head.match(/^MIME-Version:.*$/gim)?.join('|'), 'MIME-Version: 1.0');
    assert.doesNotMatch(head, /Pfaendung/);
  });

  it('labels AES-GCM messages as authEnveloped-data', async () => {
    const message = await buffer(
      encryptEnveloped({
        content: entity,
        recipients: [{ certificate: id('p-256').certificatePem }],
        contentCipher: 'aes-256-gcm',
      }),
    );
    assert.match(message.toString('latin1'), /smime-type=authEnveloped-data; name=smime\.p7m/);
  });

  it('encrypts one message for an RSA and an EC recipient that each open it', async () => {
    const rsa = id('rsa-3072');
    const ec = id('p-256');
    const message = await buffer(
      encryptEnveloped({
        content: entity,
        recipients: [{ certificate: rsa.certificatePem }, { certificate: Buffer.from(ec.certificatePem) }],
        headers,
      }),
    );
    assert.deepEqual(await opensslDecrypt(message, rsa, 'two-rsa.eml'), entity);
    assert.deepEqual(await opensslDecrypt(message, ec, 'two-ec.eml'), entity);
  });

  it('streams a 5 MB entity from a file into a message openssl opens byte for byte', async () => {
    const lines: string[] = [];
    for (let size = 0; size < 5 * 1024 * 1024; size += 78) lines.push(randomBytes(57).toString('base64'));
    const big = Buffer.from(
      `Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${lines.join('\r\n')}\r\n`,
    );
    const input = await ws.file('big.eml', big);
    const output = join(ws.dir, 'big.smime.eml');
    const recipient = id('rsa-3072');
    await pipeline(
      encryptEnveloped({
        content: createReadStream(input),
        recipients: [{ certificate: recipient.certificatePem }],
        headers,
      }),
      createWriteStream(output),
    );
    const openedPath = join(ws.dir, 'big.opened.eml');
    await ws.openssl([
      'cms',
      '-decrypt',
      '-in',
      output,
      '-inkey',
      recipient.keyPath,
      '-recip',
      recipient.certificatePath,
      '-out',
      openedPath,
    ]);
    const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.equal(sha256(await readFile(openedPath)), sha256(big));
  });

  it('gives back entities in memory of every size around the 64 KiB segments, CBC and GCM', async () => {
    const recipient = id('rsa-3072');
    for (const contentCipher of ['aes-256-cbc', 'aes-256-gcm'] as const) {
      for (const size of [0, 1, 15, 16, 17, 65_535, 65_536, 65_537, 131_072, 200_000]) {
        const content = randomBytes(size);
        const message = await buffer(
          encryptEnveloped({
            content,
            recipients: [{ certificate: recipient.certificatePem }],
            contentCipher,
            headers,
          }),
        );
        const opened = await opensslDecrypt(message, recipient, `sizes-${contentCipher}-${size}.eml`);
        assert.ok(opened.equals(content), `${contentCipher}, ${size} bytes`);
      }
    }
  });

  it('accepts DER certificates as well as PEM', async () => {
    const recipient = id('rsa-2048');
    const der = await ws.openssl(['x509', '-in', recipient.certificatePath, '-outform', 'DER']);
    const message = await buffer(encryptEnveloped({ content: entity, recipients: [{ certificate: der }] }));
    assert.deepEqual(await opensslDecrypt(message, recipient, 'der-cert.eml'), entity);
  });
});
