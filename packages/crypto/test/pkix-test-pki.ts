// A small PKI generated in the test process with pkijs and WebCrypto: certificates, CRLs, OCSP responses.
// (@peculiar/x509 would need reflect-metadata, which is not installed.)
import { webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

export const EMAIL_PROTECTION = '1.3.6.1.5.5.7.3.4';
export const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const OCSP_SIGNING_EKU = '1.3.6.1.5.5.7.3.9';
const DAY = 24 * 60 * 60 * 1000;
const KEY_USAGE_BITS = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;
export type TestKeyUsage = keyof typeof KEY_USAGE_BITS;
export type Hash = 'SHA-256' | 'SHA-1';

export async function rsaKeys(bits = 2048): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    true,
    ['sign', 'verify'],
  )) as webcrypto.CryptoKeyPair;
}

/** The same private key bound to another hash (WebCrypto fixes the hash of an RSA key at import). */
async function signingKey(keys: webcrypto.CryptoKeyPair, hash: Hash): Promise<webcrypto.CryptoKey> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return (await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash }, true, [
    'sign',
  ])) as webcrypto.CryptoKey;
}

export interface Issued {
  der: Uint8Array;
  keys: webcrypto.CryptoKeyPair;
  certificate: pkijs.Certificate;
}

export interface IssueOptions {
  /** Common name, plus an optional emailAddress attribute. */
  name: string;
  subjectEmail?: string;
  keys: webcrypto.CryptoKeyPair;
  /** Omitted for a self-signed certificate. */
  issuer?: Issued;
  serial: string;
  notBefore?: Date;
  notAfter?: Date;
  ca?: boolean;
  pathLength?: number;
  keyUsage?: TestKeyUsage[];
  extendedKeyUsage?: string[];
  emails?: string[];
  signatureHash?: Hash;
  /** authorityInfoAccess OCSP responder URL. */
  ocspUrl?: string;
  /** CRL distribution point URL, or several (one distribution point each). */
  crlUrl?: string | string[];
}

function extension(
  extnID: string,
  critical: boolean,
  value: { toSchema(): asn1js.AsnType } | asn1js.AsnType,
): pkijs.Extension {
  const schema = 'toSchema' in value ? value.toSchema() : value;
  return new pkijs.Extension({ extnID, critical, extnValue: schema.toBER(false) });
}

function keyUsageBits(usages: TestKeyUsage[]): asn1js.BitString {
  let bits = 0;
  for (const usage of usages) bits |= 0x80 >> KEY_USAGE_BITS[usage];
  return new asn1js.BitString({ valueHex: new Uint8Array([bits]).buffer, unusedBits: 0 });
}

export async function issue(options: IssueOptions, now: Date): Promise<Issued> {
  const certificate = new pkijs.Certificate();
  certificate.version = 2;
  certificate.serialNumber = new asn1js.Integer({ valueHex: Buffer.from(options.serial, 'hex') });
  certificate.subject.typesAndValues.push(
    new pkijs.AttributeTypeAndValue({ type: '2.5.4.3', value: new asn1js.Utf8String({ value: options.name }) }),
  );
  if (options.subjectEmail) {
    certificate.subject.typesAndValues.push(
      new pkijs.AttributeTypeAndValue({
        type: '1.2.840.113549.1.9.1',
        value: new asn1js.IA5String({ value: options.subjectEmail }),
      }),
    );
  }
  certificate.issuer = options.issuer ? options.issuer.certificate.subject : certificate.subject;
  certificate.notBefore.value = options.notBefore ?? new Date(now.getTime() - 30 * DAY);
  certificate.notAfter.value = options.notAfter ?? new Date(now.getTime() + 365 * DAY);
  const usages =
    options.keyUsage ?? (options.ca ? ['keyCertSign', 'cRLSign'] : ['digitalSignature', 'keyEncipherment']);
  certificate.extensions = [
    extension(
      '2.5.29.19',
      true,
      new pkijs.BasicConstraints({
        cA: options.ca === true,
        ...(options.pathLength !== undefined ? { pathLenConstraint: options.pathLength } : {}),
      }),
    ),
    extension('2.5.29.15', true, keyUsageBits(usages)),
  ];
  if (options.extendedKeyUsage)
    certificate.extensions.push(
      extension('2.5.29.37', false, new pkijs.ExtKeyUsage({ keyPurposes: options.extendedKeyUsage })),
    );
  if (options.emails) {
    const altNames = options.emails.map((value) => new pkijs.GeneralName({ type: 1, value }));
    certificate.extensions.push(extension('2.5.29.17', false, new pkijs.AltName({ altNames })));
  }
  if (options.ocspUrl) {
    const location = new pkijs.GeneralName({ type: 6, value: options.ocspUrl });
    const access = new pkijs.InfoAccess({
      accessDescriptions: [
        new pkijs.AccessDescription({ accessMethod: '1.3.6.1.5.5.7.48.1', accessLocation: location }),
      ],
    });
    certificate.extensions.push(extension('1.3.6.1.5.5.7.1.1', false, access));
  }
  if (options.crlUrl) {
    const distributionPoints = [options.crlUrl]
      .flat()
      .map(
        (url) => new pkijs.DistributionPoint({ distributionPoint: [new pkijs.GeneralName({ type: 6, value: url })] }),
      );
    certificate.extensions.push(extension('2.5.29.31', false, new pkijs.CRLDistributionPoints({ distributionPoints })));
  }
  await certificate.subjectPublicKeyInfo.importKey(options.keys.publicKey);
  const hash = options.signatureHash ?? 'SHA-256';
  await certificate.sign(await signingKey(options.issuer?.keys ?? options.keys, hash), hash);
  const der = new Uint8Array(certificate.toSchema().toBER());
  return { der, keys: options.keys, certificate: pkijs.Certificate.fromBER(der) };
}

export async function crlOf(
  issuer: Issued,
  revokedSerials: string[],
  times: { thisUpdate: Date; nextUpdate: Date },
): Promise<Uint8Array> {
  const crl = new pkijs.CertificateRevocationList();
  crl.version = 1;
  crl.issuer = issuer.certificate.subject;
  crl.thisUpdate = new pkijs.Time({ type: 0, value: times.thisUpdate });
  crl.nextUpdate = new pkijs.Time({ type: 0, value: times.nextUpdate });
  if (revokedSerials.length > 0) {
    crl.revokedCertificates = revokedSerials.map(
      (serial) =>
        new pkijs.RevokedCertificate({
          userCertificate: new asn1js.Integer({ valueHex: Buffer.from(serial, 'hex') }),
          revocationDate: new pkijs.Time({ type: 0, value: times.thisUpdate }),
        }),
    );
  }
  await crl.sign(issuer.keys.privateKey, 'SHA-256');
  return new Uint8Array(crl.toSchema().toBER());
}

export async function ocspResponseFor(
  subject: Issued,
  issuer: Issued,
  status: 'good' | 'revoked' | 'unknown',
  times: { thisUpdate: Date; nextUpdate?: Date },
  signer: { keys: webcrypto.CryptoKeyPair; certificate?: Issued } = { keys: issuer.keys },
): Promise<Uint8Array> {
  const certID = new pkijs.CertID();
  await certID.createForCertificate(subject.certificate, {
    hashAlgorithm: 'SHA-256',
    issuerCertificate: issuer.certificate,
  });
  const certStatus =
    status === 'good'
      ? new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } })
      : status === 'revoked'
        ? new asn1js.Constructed({
            idBlock: { tagClass: 3, tagNumber: 1 },
            value: [new asn1js.GeneralizedTime({ valueDate: times.thisUpdate })],
          })
        : new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 2 } });
  const basic = new pkijs.BasicOCSPResponse();
  basic.tbsResponseData.responderID = (signer.certificate ?? issuer).certificate.subject;
  basic.tbsResponseData.producedAt = times.thisUpdate;
  basic.tbsResponseData.responses.push(
    new pkijs.SingleResponse({
      certID,
      certStatus,
      thisUpdate: times.thisUpdate,
      ...(times.nextUpdate ? { nextUpdate: times.nextUpdate } : {}),
    }),
  );
  if (signer.certificate) basic.certs = [signer.certificate.certificate];
  await basic.sign(signer.keys.privateKey, 'SHA-256');
  const response = new pkijs.OCSPResponse({
    responseStatus: new asn1js.Enumerated({ value: 0 }),
    responseBytes: new pkijs.ResponseBytes({
      responseType: '1.3.6.1.5.5.7.48.1.1',
      response: new asn1js.OctetString({ valueHex: basic.toSchema().toBER() }),
    }),
  });
  return new Uint8Array(response.toSchema().toBER());
}
