// A test signer built with pkijs, for what openssl cms -sign cannot write: an smimeCapabilities attribute of our
// choosing (AES-256-GCM, RSAES-OAEP) and id-aa-encrypKeyPref naming a separate encryption certificate. Detached
// multipart/signed, SHA-256, RSA PKCS#1 v1.5 signature. For tests only (crypto's and encrypt's): `@smgw/crypto/testing`.
import { createHash, createPrivateKey, webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

export interface PkijsSignOptions {
  /** The MIME entity to sign (CRLF). */
  content: Buffer;
  signerCertificate: Buffer;
  /** PEM, RSA. */
  signerKeyPem: string;
  /** Capability OIDs in preference order; omitted → no smimeCapabilities attribute. */
  capabilityOids?: string[];
  /** A certificate (also put into the message) that id-aa-encrypKeyPref names. */
  encryptionCertificate?: Buffer;
  /** Prepended header lines (CRLF-terminated), e.g. From. */
  header?: string;
}

export async function signWithPkijs(options: PkijsSignOptions): Promise<Buffer> {
  const signer = pkijs.Certificate.fromBER(options.signerCertificate);
  const encryption = options.encryptionCertificate
    ? pkijs.Certificate.fromBER(options.encryptionCertificate)
    : undefined;
  const attributes = [
    new pkijs.Attribute({
      type: '1.2.840.113549.1.9.3',
      values: [new asn1js.ObjectIdentifier({ value: '1.2.840.113549.1.7.1' })],
    }),
    new pkijs.Attribute({
      type: '1.2.840.113549.1.9.4',
      values: [new asn1js.OctetString({ valueHex: createHash('sha256').update(options.content).digest() })],
    }),
  ];
  if (options.capabilityOids) {
    attributes.push(
      new pkijs.Attribute({
        type: '1.2.840.113549.1.9.15',
        values: [
          new asn1js.Sequence({
            value: options.capabilityOids.map(
              (oid) => new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: oid })] }),
            ),
          }),
        ],
      }),
    );
  }
  if (encryption) {
    attributes.push(
      new pkijs.Attribute({
        type: '1.2.840.113549.1.9.16.2.11',
        values: [
          new asn1js.Constructed({
            idBlock: { tagClass: 3, tagNumber: 0 },
            value: [encryption.issuer.toSchema(), encryption.serialNumber],
          }),
        ],
      }),
    );
  }
  const signedData = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: '1.2.840.113549.1.7.1' }),
    signerInfos: [
      new pkijs.SignerInfo({
        version: 1,
        sid: new pkijs.IssuerAndSerialNumber({ issuer: signer.issuer, serialNumber: signer.serialNumber }),
        signedAttrs: new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes }),
      }),
    ],
    certificates: encryption ? [signer, encryption] : [signer],
  });
  const pkcs8 = createPrivateKey(options.signerKeyPem).export({ format: 'der', type: 'pkcs8' });
  const key = await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, [
    'sign',
  ]);
  await signedData.sign(key as Parameters<typeof signedData.sign>[0], 0, 'SHA-256', new Uint8Array(options.content));
  const cms = new pkijs.ContentInfo({ contentType: '1.2.840.113549.1.7.2', content: signedData.toSchema(true) });
  const base64 = Buffer.from(cms.toSchema().toBER(false))
    .toString('base64')
    .replace(/.{1,76}/g, '$&\r\n');
  const boundary = 'pkijs-signed-boundary';
  return Buffer.concat([
    Buffer.from(
      `${options.header ?? ''}MIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="${boundary}"\r\n\r\n--${boundary}\r\n`,
    ),
    options.content,
    Buffer.from(
      `\r\n--${boundary}\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64}\r\n--${boundary}--\r\n`,
    ),
  ]);
}
