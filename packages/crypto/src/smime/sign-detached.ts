// Signing with an agency's key before encryption (RFC 8551 §3.5.3): a detached CMS SignedData over the MIME entity,
// wrapped as multipart/signed. pkijs builds the SignedData; WebCrypto signs (RSASSA-PKCS1-v1_5 or ECDSA, SHA-256).
// The digest is computed by the caller or here, so a large entity can be hashed while it streams.
import { createHash, createPrivateKey, type KeyObject, randomBytes, webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { createBase64LineEncoder } from '../base64-lines.ts';
import { type CertificateInput, certificateDer } from './certificate.ts';
import { SmimeError } from './errors.ts';

const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  smimeCapabilities: '1.2.840.113549.1.9.15',
  aes256Gcm: '2.16.840.1.101.3.4.1.46',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  aes128Gcm: '2.16.840.1.101.3.4.1.6',
  aes128Cbc: '2.16.840.1.101.3.4.1.2',
  rsaesOaep: '1.2.840.113549.1.1.7',
} as const;

/** What we announce we can decrypt, in preference order (RFC 8551 §2.5.2): recipients may answer with these. */
const OUR_CAPABILITIES = [OID.aes256Gcm, OID.aes256Cbc, OID.aes128Gcm, OID.aes128Cbc, OID.rsaesOaep];

export interface SigningKey {
  certificate: CertificateInput;
  /** A node KeyObject, PEM, or PKCS#8 DER. Never logged. */
  privateKey: KeyObject | string | Uint8Array;
  /** Intermediate certificates to include, so the recipient can build the path. */
  chain?: CertificateInput[];
}

function keyObjectOf(input: SigningKey['privateKey']): KeyObject {
  try {
    if (typeof input === 'string') return createPrivateKey(input);
    if (input instanceof Uint8Array) return createPrivateKey({ key: Buffer.from(input), format: 'der', type: 'pkcs8' });
    return input;
  } catch (err) {
    throw new SmimeError('SMIME_INVALID_KEY', 'the signing key cannot be read', { cause: err });
  }
}

const CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

async function webcryptoSigningKey(key: KeyObject): Promise<webcrypto.CryptoKey> {
  const pkcs8 = key.export({ format: 'der', type: 'pkcs8' });
  try {
    if (key.asymmetricKeyType === 'rsa') {
      return await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, [
        'sign',
      ]);
    }
    const curve = CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (key.asymmetricKeyType === 'ec' && curve) {
      return await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve: curve }, false, ['sign']);
    }
  } finally {
    pkcs8.fill(0);
  }
  throw new SmimeError('SMIME_UNSUPPORTED_ALGORITHM', `cannot sign with a ${key.asymmetricKeyType} key`);
}

function attribute(type: string, value: asn1js.BaseBlock): pkijs.Attribute {
  return new pkijs.Attribute({ type, values: [value] });
}

/**
 * A detached SignedData (DER ContentInfo) over content whose SHA-256 is `contentDigest`: signed attributes
 * contentType, signingTime, messageDigest and our S/MIME capabilities; the signer's certificate and chain included.
 */
export async function createDetachedSignature(options: {
  contentDigest: Uint8Array;
  key: SigningKey;
  signingTime: Date;
}): Promise<Buffer> {
  if (options.contentDigest.length !== 32) {
    throw new SmimeError('SMIME_INVALID_KEY', 'the content digest must be SHA-256 (32 bytes)');
  }
  const certificate = pkijs.Certificate.fromBER(certificateDer(options.key.certificate));
  const chain = (options.key.chain ?? []).map((c) => pkijs.Certificate.fromBER(certificateDer(c)));
  const cryptoKey = await webcryptoSigningKey(keyObjectOf(options.key.privateKey));
  const capabilities = new asn1js.Sequence({
    value: OUR_CAPABILITIES.map((oid) => new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: oid })] })),
  });
  const signedData = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OID.data }),
    signerInfos: [
      new pkijs.SignerInfo({
        version: 1,
        sid: new pkijs.IssuerAndSerialNumber({ issuer: certificate.issuer, serialNumber: certificate.serialNumber }),
        signedAttrs: new pkijs.SignedAndUnsignedAttributes({
          type: 0,
          attributes: [
            attribute(OID.contentType, new asn1js.ObjectIdentifier({ value: OID.data })),
            attribute(OID.signingTime, new asn1js.UTCTime({ valueDate: options.signingTime })),
            attribute(OID.messageDigest, new asn1js.OctetString({ valueHex: new Uint8Array(options.contentDigest) })),
            attribute(OID.smimeCapabilities, capabilities),
          ],
        }),
      }),
    ],
    certificates: [certificate, ...chain],
  });
  try {
    // With signed attributes, pkijs signs their DER (the messageDigest above binds the content).
    await signedData.sign(cryptoKey, 0, 'SHA-256');
  } catch (err) {
    throw new SmimeError('SMIME_INVALID_KEY', 'signing failed (does the key belong to the certificate?)', {
      cause: err,
    });
  }
  const contentInfo = new pkijs.ContentInfo({ contentType: OID.signedData, content: signedData.toSchema(true) });
  return Buffer.from(contentInfo.toSchema().toBER(false));
}

function base64WithLineBreaks(bytes: Buffer): Buffer {
  const encoder = createBase64LineEncoder();
  return Buffer.concat([encoder.push(bytes), encoder.end()]);
}

/**
 * The MIME entity signed as multipart/signed (RFC 8551 §3.5.3). `entity` must already be in canonical form
 * (CRLF line ends, 7-bit or base64/quoted-printable transfer encodings) since its bytes are what is signed.
 */
export async function signMultipart(options: {
  entity: Uint8Array;
  key: SigningKey;
  signingTime: Date;
}): Promise<Buffer> {
  const entity = Buffer.from(options.entity);
  const signature = await createDetachedSignature({
    contentDigest: createHash('sha256').update(entity).digest(),
    key: options.key,
    signingTime: options.signingTime,
  });
  const boundary = `----=_smgw_signed_${randomBytes(12).toString('hex')}`;
  return Buffer.concat([
    Buffer.from(
      `Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256;\r\n boundary="${boundary}"\r\n\r\n` +
        `This is a cryptographically signed message in MIME format.\r\n\r\n--${boundary}\r\n`,
    ),
    entity,
    Buffer.from(
      `\r\n--${boundary}\r\nContent-Type: application/pkcs7-signature; name="smime.p7s"\r\n` +
        'Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="smime.p7s"\r\n' +
        'Content-Description: S/MIME Cryptographic Signature\r\n\r\n',
    ),
    base64WithLineBreaks(signature),
    // The last base64 line ends in CRLF, which serves as the closing delimiter's CRLF.
    Buffer.from(`--${boundary}--\r\n`),
  ]);
}
