// verifySignedMessage with the real openssl as the signing peer: detached multipart/signed and opaque signed-data,
// RSA and EC signers, `cms -sign` and `smime -sign`, tampering, SHA-1, and what OpenSSL announces as capabilities.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { SmimeError, verifySignedMessage } from '../src/index.ts';
import { signWithPkijs } from '../src/testing/index.ts';
import { longOid, tlv } from './der-elements.ts';
import { createOpensslWorkspace, type OpensslWorkspace } from './smime-openssl.ts';

const entity = Buffer.from(
  'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\nGrüße aus der Behörde.\r\n\r\nZweite Zeile.\r\n',
);

interface Signer {
  certificatePath: string;
  keyPath: string;
  der: Buffer;
}

describe('verifySignedMessage', () => {
  let ws: OpensslWorkspace;
  let rsa: Signer;
  let ec: Signer;
  let entityPath: string;

  async function signer(name: string, newKey: string[]): Promise<Signer> {
    const keyPath = `${ws.dir}/${name}.key.pem`;
    const certificatePath = `${ws.dir}/${name}.cert.pem`;
    await ws.openssl([
      'req',
      '-x509',
      ...newKey,
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certificatePath,
      '-subj',
      `/CN=${name}`,
      '-days',
      '2',
      '-sha256',
      '-addext',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      '-addext',
      `subjectAltName=email:${name}@partner.example`,
    ]);
    const pem = await ws.openssl(['x509', '-in', certificatePath, '-outform', 'DER']);
    return { certificatePath, keyPath, der: Buffer.from(new X509Certificate(pem).raw) };
  }

  const sign = (who: Signer, ...extra: string[]): Promise<Buffer> =>
    ws.openssl(['cms', '-sign', '-in', entityPath, '-signer', who.certificatePath, '-inkey', who.keyPath, ...extra]);

  before(async () => {
    ws = await createOpensslWorkspace();
    entityPath = await ws.file('entity.eml', entity);
    rsa = await signer('rsa-signer', ['-newkey', 'rsa:2048']);
    ec = await signer('ec-signer', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  });
  after(async () => {
    await ws.remove();
  });

  it('accepts a detached multipart/signed message from openssl cms -sign with an RSA signer', async () => {
    const message = await sign(rsa);
    assert.match(message.toString('latin1'), /multipart\/signed/);
    const result = await verifySignedMessage(message);
    assert.equal(result.valid, true, result.reason);
    assert.deepEqual(result.signerCertificate, rsa.der);
    assert.deepEqual(result.certificates, [rsa.der]);
    assert.deepEqual(result.content, entity);
    assert.ok(result.signingTime instanceof Date);
  });

  it('accepts an EC (P-256) signer', async () => {
    const result = await verifySignedMessage(await sign(ec));
    assert.equal(result.valid, true, result.reason);
    assert.deepEqual(result.signerCertificate, ec.der);
  });

  it('accepts opaque application/pkcs7-mime signed-data and returns the encapsulated entity', async () => {
    const message = await sign(rsa, '-nodetach');
    assert.match(message.toString('latin1'), /smime-type="?signed-data/);
    const result = await verifySignedMessage(message);
    assert.equal(result.valid, true, result.reason);
    assert.deepEqual(result.content, entity);
  });

  it('accepts what openssl smime -sign writes, also when the message is stored with bare LF line ends', async () => {
    const message = await ws.openssl([
      'smime',
      '-sign',
      '-in',
      entityPath,
      '-signer',
      rsa.certificatePath,
      '-inkey',
      rsa.keyPath,
    ]);
    assert.equal((await verifySignedMessage(message)).valid, true);
    const lf = Buffer.from(message.toString('latin1').replaceAll('\r\n', '\n'), 'latin1');
    assert.equal((await verifySignedMessage(lf)).valid, true);
  });

  it('says BAD_SIGNATURE when one character of the signed body was changed', async () => {
    const message = (await sign(rsa)).toString('latin1').replace('Zweite Zeile', 'Zweite Zeilx');
    const result = await verifySignedMessage(Buffer.from(message, 'latin1'));
    assert.equal(result.valid, false);
    assert.equal(result.code, 'BAD_SIGNATURE');
    assert.deepEqual(result.signerCertificate, rsa.der);
  });

  it('says BAD_SIGNATURE when the signed part gained a line, even one that only looks like whitespace', async () => {
    const message = (await sign(ec)).toString('latin1').replace('Zweite Zeile.\r\n', 'Zweite Zeile.\r\n\r\n');
    const result = await verifySignedMessage(Buffer.from(message, 'latin1'));
    assert.equal(result.valid, false);
    assert.equal(result.code, 'BAD_SIGNATURE');
  });

  it('refuses a SHA-1 signature as WEAK_SIGNATURE', async () => {
    const result = await verifySignedMessage(await sign(rsa, '-md', 'sha1'));
    assert.equal(result.valid, false);
    assert.equal(result.code, 'WEAK_SIGNATURE');
  });

  it('accepts SHA-384 and SHA-512 digests', async () => {
    for (const md of ['sha384', 'sha512']) {
      const result = await verifySignedMessage(await sign(ec, '-md', md));
      assert.equal(result.valid, true, `${md}: ${result.reason}`);
    }
  });

  it("reads back OpenSSL's default smimeCapabilities: AES-CBC first, no GCM, no OAEP", async () => {
    const { capabilities } = await verifySignedMessage(await sign(rsa));
    assert.ok(capabilities);
    assert.deepEqual(capabilities.contentCiphers, [
      'aes-256-cbc',
      'aes-192-cbc',
      'aes-128-cbc',
      'des-ede3-cbc',
      'rc2-cbc',
      'des-cbc',
    ]);
    assert.equal(capabilities.oids[0], '2.16.840.1.101.3.4.1.42');
    assert.equal(capabilities.keyTransport, undefined);
  });

  it('has no capabilities when the signer left them out (-nosmimecap)', async () => {
    const result = await verifySignedMessage(await sign(rsa, '-nosmimecap'));
    assert.equal(result.valid, true);
    assert.equal(result.capabilities, undefined);
  });

  it('throws SMIME_NOT_SIGNED for plain entities and OpenPGP-signed ones', async () => {
    await assert.rejects(verifySignedMessage(entity), (e) => e instanceof SmimeError && e.code === 'SMIME_NOT_SIGNED');
    const pgpSigned = Buffer.from(
      'Content-Type: multipart/signed; protocol="application/pgp-signature"; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n',
    );
    await assert.rejects(
      verifySignedMessage(pgpSigned),
      (e) => e instanceof SmimeError && e.code === 'SMIME_NOT_SIGNED',
    );
  });

  it('throws SMIME_MALFORMED for damaged input instead of crashing', async () => {
    const good = (await sign(rsa)).toString('latin1');
    const boundary = /boundary="([^"]+)"/.exec(good)?.[1] ?? '';
    const damaged = [
      // the signature part's base64 cut short
      good.replace(/(smime\.p7s"\r?\n\r?\n)([A-Za-z0-9+/=\r\n]{200})[A-Za-z0-9+/=\r\n]+/, '$1$2'),
      // no closing delimiter
      good.slice(0, good.lastIndexOf(`--${boundary}--`)),
      // a boundary parameter that is missing
      good.replace(/; boundary="[^"]+"/, ''),
      'Content-Type: application/pkcs7-mime; smime-type=signed-data\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n',
      'Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n\r\n',
    ];
    for (const text of damaged) {
      await assert.rejects(
        verifySignedMessage(Buffer.from(text, 'latin1')),
        (e) => e instanceof SmimeError && e.code === 'SMIME_MALFORMED',
        text.slice(0, 200),
      );
    }
  });

  // Encrypt harvests the signer's certificate of inbound mail up to HARVEST_MAX_BYTES (5 MiB) on its one event loop;
  // asn1js built an object per arc of an OID, so one OID of the message's size took 6 to 9 s there.
  it('refuses a SignedData holding an OID of megabytes as SMIME_MALFORMED, before pkijs reads it', async () => {
    const oid = longOid(1_900_000);
    const signedData = tlv(
      0x30,
      Buffer.concat([tlv(0x02, Buffer.from([1])), tlv(0x31, tlv(0x30, oid)), tlv(0x30, oid)]),
    );
    const cms = tlv(0x30, Buffer.concat([tlv(0x06, Buffer.from('2a864886f70d010702', 'hex')), tlv(0xa0, signedData)]));
    const message = Buffer.from(
      'Content-Type: application/pkcs7-mime; smime-type=signed-data\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
        cms.toString('base64').replace(/.{76}/g, '$&\r\n'),
    );
    assert.ok(message.length > 5_000_000);
    await assert.rejects(
      verifySignedMessage(message),
      (e) => e instanceof SmimeError && e.code === 'SMIME_MALFORMED' && /OID longer than 256 bytes/.test(e.message),
    );
  });

  it('refuses a multipart/signed whose signature part carries signed content of its own', async () => {
    // An opaque signature over other content, put under a body part it does not cover: pkijs alone would accept it.
    const opaque = (await sign(rsa, '-nodetach')).toString('latin1');
    const opaqueBase64 = opaque.slice(opaque.search(/\r?\n\r?\n/)).trim();
    const detached = (await sign(rsa)).toString('latin1').replace('Zweite Zeile', 'Überweisen Sie 1000 Euro');
    const mixed = detached.replace(
      /(smime\.p7s"\r?\n\r?\n)[A-Za-z0-9+/=\r\n]+?(\r?\n\r?\n?------)/,
      `$1${opaqueBase64}$2`,
    );
    assert.notEqual(mixed, detached);
    await assert.rejects(
      verifySignedMessage(Buffer.from(mixed, 'latin1')),
      (e) => e instanceof SmimeError && e.code === 'SMIME_MALFORMED',
    );
  });

  it('reads announced AES-256-GCM and RSAES-OAEP, and the encryption certificate id-aa-encrypKeyPref names', async () => {
    const encryption = await signer('enc-cert', ['-newkey', 'rsa:2048']);
    const message = await signWithPkijs({
      content: entity,
      signerCertificate: rsa.der,
      signerKeyPem: await readFile(rsa.keyPath, 'utf8'),
      capabilityOids: ['2.16.840.1.101.3.4.1.46', '2.16.840.1.101.3.4.1.42', '1.2.840.113549.1.1.7'],
      encryptionCertificate: encryption.der,
    });
    // openssl, the independent peer, agrees that the signature holds.
    const path = await ws.file('pkijs-signed.eml', message);
    await ws.openssl(['cms', '-verify', '-noverify', '-in', path, '-out', `${ws.dir}/pkijs-content.eml`]);
    const result = await verifySignedMessage(message);
    assert.equal(result.valid, true, result.reason);
    assert.deepEqual(result.signerCertificate, rsa.der);
    assert.deepEqual(result.capabilities, {
      contentCiphers: ['aes-256-gcm', 'aes-256-cbc'],
      keyTransport: 'rsa-oaep',
      oids: ['2.16.840.1.101.3.4.1.46', '2.16.840.1.101.3.4.1.42', '1.2.840.113549.1.1.7'],
    });
    assert.deepEqual(result.encryptionCertificate, encryption.der);
  });

  it('says SIGNER_NOT_FOUND when the message carries no certificates (-nocerts)', async () => {
    const result = await verifySignedMessage(await sign(rsa, '-nocerts'));
    assert.equal(result.valid, false);
    assert.equal(result.code, 'SIGNER_NOT_FOUND');
    assert.deepEqual(result.certificates, []);
  });
});
