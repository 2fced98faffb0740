// Verifying signed S/MIME (RFC 8551 / RFC 5652 SignedData): detached multipart/signed (RFC 1847) and opaque
// application/pkcs7-mime; smime-type=signed-data. Only the signature is judged here (pkijs SignedData.verify with
// checkChain off, LIBRARY-NOTES §4): whether the signer's certificate is trustworthy is src/pkix's question.
import { bareLfToCrlf, type HeaderField, headerValue, splitHeaderBlock } from '@smgw/mime';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { holdsOverlongOid, MAX_OID_BYTES } from './ber-reader.ts';
import { SmimeError } from './errors.ts';
import { isSignedContentType, multipartParts, parseContentType } from './mime-entity.ts';
import { CONTENT_CIPHER_BY_OID, ID_RSAES_OAEP, RSA_ENCRYPTION } from './oids.ts';

const ID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const ID_CONTENT_TYPE = '1.2.840.113549.1.9.3';
const ID_SIGNING_TIME = '1.2.840.113549.1.9.5';
const ID_SMIME_CAPABILITIES = '1.2.840.113549.1.9.15';
const ID_AA_ENCRYP_KEY_PREF = '1.2.840.113549.1.9.16.2.11';

/** Digest algorithms we accept (SHA-256 and stronger); SHA-1 and MD5 are refused as WEAK_SIGNATURE. */
const STRONG_DIGESTS: Readonly<Record<string, string>> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
const WEAK_DIGESTS: Readonly<Record<string, string>> = {
  '1.3.14.3.2.26': 'SHA-1',
  '1.2.840.113549.2.5': 'MD5',
  '2.16.840.1.101.3.4.2.4': 'SHA-224',
};

/** Signature algorithms: a hash of their own (checked like the digest), or none (the digest algorithm decides). */
const SIGNATURE_ALGORITHMS: Readonly<Record<string, string | null>> = {
  [RSA_ENCRYPTION]: null, // what OpenSSL writes: PKCS#1 v1.5 with the SignerInfo's digest algorithm
  '1.2.840.113549.1.1.10': null, // RSASSA-PSS (pkijs reads the hash from its parameters)
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.10045.2.1': null, // id-ecPublicKey, as some clients write it: the digest algorithm decides
};
const WEAK_SIGNATURE_ALGORITHMS: Readonly<Record<string, string>> = {
  '1.2.840.113549.1.1.4': 'MD5',
  '1.2.840.113549.1.1.5': 'SHA-1',
  '1.2.840.113549.1.1.14': 'SHA-224',
  '1.2.840.10045.4.1': 'SHA-1',
  '1.2.840.10045.4.3.1': 'SHA-224',
  '1.3.14.3.2.29': 'SHA-1',
};

/** Content-encryption capabilities we can name (RFC 8551 §2.5.2); others are kept as OIDs in `oids`. */
const CAPABILITY_CIPHER_NAMES: Readonly<Record<string, string>> = {
  ...Object.fromEntries(Object.entries(CONTENT_CIPHER_BY_OID).map(([oid, spec]) => [oid, spec.cipher])),
  '1.2.840.113549.3.2': 'rc2-cbc',
  '1.3.14.3.2.7': 'des-cbc',
  '1.2.840.113549.1.9.16.3.18': 'chacha20-poly1305',
};

/** Why a signature is not valid. */
export type SignatureCode =
  /** the signature or the message-digest attribute does not match: the content was changed, or forged */
  | 'BAD_SIGNATURE'
  /** signed with SHA-1, MD5 or SHA-224 */
  | 'WEAK_SIGNATURE'
  /** a signature or digest algorithm we do not verify */
  | 'UNSUPPORTED_ALGORITHM'
  /** the signer's certificate is not in the message */
  | 'SIGNER_NOT_FOUND';

export interface SmimeCapabilities {
  /** Content-encryption algorithms in the sender's order of preference, by name (aes-256-gcm, aes-256-cbc, …). */
  contentCiphers: string[];
  /** `rsa-oaep` when RSAES-OAEP is announced; `rsa-pkcs1v15` when only rsaEncryption is. */
  keyTransport?: 'rsa-oaep' | 'rsa-pkcs1v15';
  /** Every capability OID as announced, in order. */
  oids: string[];
}

export interface SignedMessageVerification {
  valid: boolean;
  code?: SignatureCode;
  reason?: string;
  /** DER of the signer's certificate (missing only with SIGNER_NOT_FOUND). */
  signerCertificate?: Buffer;
  /** DER of every certificate the message carries (the signer's and intermediates). */
  certificates: Buffer[];
  /** The signed entity: the first part of multipart/signed or the encapsulated content, CRLF-canonical. */
  content: Buffer;
  signingTime?: Date;
  capabilities?: SmimeCapabilities;
  /** RFC 8551 id-aa-encrypKeyPref: the certificate (from the message) the sender wants mail encrypted to. */
  encryptionCertificate?: Buffer;
}

/**
 * Verifies the first signer of a signed S/MIME entity (header and body). Throws SmimeError SMIME_NOT_SIGNED for an
 * entity that is not signed S/MIME and SMIME_MALFORMED for one that cannot be read; a signature that does not hold
 * is a result with `valid: false`, not an error.
 */
export async function verifySignedMessage(mime: Buffer): Promise<SignedMessageVerification> {
  // RFC 5751 §3.1.1: the signature covers the canonical form; messages are often stored with bare LF.
  const entity = splitHeaderBlock(bareLfToCrlf(mime));
  const type = parseContentType(headerValue(entity.fields, 'content-type'));
  let cms: Buffer;
  let detachedContent: Buffer | undefined;
  if (type.mediaType === 'multipart/signed') {
    const protocol = (type.parameters.protocol ?? '').toLowerCase();
    if (protocol !== 'application/pkcs7-signature' && protocol !== 'application/x-pkcs7-signature') {
      throw new SmimeError('SMIME_NOT_SIGNED', `multipart/signed with protocol ${protocol || '(none)'} is not S/MIME`);
    }
    const [signed, signature] = multipartParts(entity.body, type.parameters.boundary ?? '');
    if (!signed || !signature) throw new SmimeError('SMIME_MALFORMED', 'multipart/signed needs two parts');
    detachedContent = signed;
    cms = decodedBody(splitHeaderBlock(signature));
  } else if (isSignedContentType(headerValue(entity.fields, 'content-type') ?? '')) {
    cms = decodedBody(entity);
  } else {
    throw new SmimeError('SMIME_NOT_SIGNED', `${type.mediaType} is not a signed S/MIME entity`);
  }
  return verifySignedData(cms, detachedContent);
}

function decodedBody(entity: { fields: readonly HeaderField[]; body: Buffer }): Buffer {
  const encoding = (headerValue(entity.fields, 'content-transfer-encoding') ?? '7bit').toLowerCase();
  if (encoding === 'base64')
    return Buffer.from(entity.body.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  if (encoding === 'binary' || encoding === '7bit' || encoding === '8bit') return entity.body;
  throw new SmimeError('SMIME_MALFORMED', `a CMS body in ${encoding} transfer encoding`);
}

function parseSignedData(cms: Buffer): pkijs.SignedData {
  if (holdsOverlongOid(cms)) {
    throw new SmimeError('SMIME_MALFORMED', `not a readable CMS SignedData: an OID longer than ${MAX_OID_BYTES} bytes`);
  }
  try {
    const contentInfo = pkijs.ContentInfo.fromBER(cms);
    if (contentInfo.contentType !== ID_SIGNED_DATA) {
      throw new SmimeError('SMIME_NOT_SIGNED', `CMS content type ${contentInfo.contentType} is not signed-data`);
    }
    return new pkijs.SignedData({ schema: contentInfo.content });
  } catch (err) {
    if (err instanceof SmimeError) throw err;
    throw new SmimeError('SMIME_MALFORMED', `not a readable CMS SignedData: ${(err as Error).message}`, { cause: err });
  }
}

async function verifySignedData(cms: Buffer, detachedContent: Buffer | undefined): Promise<SignedMessageVerification> {
  const signedData = parseSignedData(cms);
  const certificates = (signedData.certificates ?? [])
    .filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate)
    .map((c) => ({ parsed: c, der: Buffer.from(c.toSchema().toBER(false)) }));
  const signerInfo = signedData.signerInfos[0];
  if (!signerInfo) throw new SmimeError('SMIME_MALFORMED', 'SignedData without a SignerInfo');

  const eContent = signedData.encapContentInfo.eContent;
  let content: Buffer;
  if (detachedContent) {
    // pkijs would verify the encapsulated content instead of the part shown to the reader: refuse the mix.
    if (eContent)
      throw new SmimeError('SMIME_MALFORMED', 'multipart/signed whose signature carries content of its own');
    content = detachedContent;
  } else if (eContent) content = Buffer.from(eContent.getValue());
  else throw new SmimeError('SMIME_MALFORMED', 'opaque SignedData without content');

  const attributes = signerInfo.signedAttrs?.attributes ?? [];
  const facts = {
    certificates: certificates.map((c) => c.der),
    content,
    ...signedAttributeFacts(attributes, certificates),
  };
  const refuse = (code: SignatureCode, reason: string): SignedMessageVerification => ({
    valid: false,
    code,
    reason,
    ...facts,
    ...signerOf(signerInfo, certificates),
  });

  const algorithmProblem = algorithmProblemOf(signerInfo);
  if (algorithmProblem) return refuse(algorithmProblem.code, algorithmProblem.reason);
  const contentTypeAttribute = attributes.find((a) => a.type === ID_CONTENT_TYPE)?.values[0];
  if (
    contentTypeAttribute instanceof asn1js.ObjectIdentifier &&
    contentTypeAttribute.valueBlock.toString() !== signedData.encapContentInfo.eContentType
  ) {
    return refuse('BAD_SIGNATURE', 'the content-type attribute differs from the encapsulated content type');
  }

  try {
    const result = await signedData.verify({
      signer: 0,
      data: detachedContent ? new Uint8Array(detachedContent).buffer : new ArrayBuffer(0),
      checkChain: false,
      extendedMode: true,
    });
    const signerCertificate = Buffer.from(result.signerCertificate?.toSchema().toBER(false) ?? new ArrayBuffer(0));
    if (!result.signatureVerified) {
      return { ...refuse('BAD_SIGNATURE', 'the signature does not match the signed data'), signerCertificate };
    }
    return { valid: true, ...facts, signerCertificate };
  } catch (err) {
    if (err instanceof pkijs.SignedDataVerifyError) {
      if (err.code === 3 || err.code === 2) return refuse('SIGNER_NOT_FOUND', err.message);
      if (err.code === 7) return refuse('UNSUPPORTED_ALGORITHM', err.message);
      return refuse('BAD_SIGNATURE', err.message);
    }
    return refuse('BAD_SIGNATURE', `signature not verifiable: ${(err as Error).message}`);
  }
}

function algorithmProblemOf(signerInfo: pkijs.SignerInfo): { code: SignatureCode; reason: string } | undefined {
  const digestOid = signerInfo.digestAlgorithm.algorithmId;
  const signatureOid = signerInfo.signatureAlgorithm.algorithmId;
  const weak = WEAK_DIGESTS[digestOid] ?? WEAK_SIGNATURE_ALGORITHMS[signatureOid];
  if (weak) return { code: 'WEAK_SIGNATURE', reason: `signed with ${weak}; SHA-256 or stronger is required` };
  if (!STRONG_DIGESTS[digestOid]) return { code: 'UNSUPPORTED_ALGORITHM', reason: `digest algorithm ${digestOid}` };
  if (!(signatureOid in SIGNATURE_ALGORITHMS)) {
    return { code: 'UNSUPPORTED_ALGORITHM', reason: `signature algorithm ${signatureOid}` };
  }
  return undefined;
}

function signerOf(
  signerInfo: pkijs.SignerInfo,
  certificates: ReadonlyArray<{ parsed: pkijs.Certificate; der: Buffer }>,
): { signerCertificate?: Buffer } {
  const sid = signerInfo.sid;
  if (!(sid instanceof pkijs.IssuerAndSerialNumber)) return {};
  const match = certificates.find(
    (c) => c.parsed.issuer.isEqual(sid.issuer) && c.parsed.serialNumber.isEqual(sid.serialNumber),
  );
  return match ? { signerCertificate: match.der } : {};
}

function signedAttributeFacts(
  attributes: readonly pkijs.Attribute[],
  certificates: ReadonlyArray<{ parsed: pkijs.Certificate; der: Buffer }>,
): Pick<SignedMessageVerification, 'signingTime' | 'capabilities' | 'encryptionCertificate'> {
  const facts: Pick<SignedMessageVerification, 'signingTime' | 'capabilities' | 'encryptionCertificate'> = {};
  for (const attribute of attributes) {
    const value = attribute.values[0];
    if (
      attribute.type === ID_SIGNING_TIME &&
      (value instanceof asn1js.UTCTime || value instanceof asn1js.GeneralizedTime)
    ) {
      facts.signingTime = value.toDate();
    } else if (attribute.type === ID_SMIME_CAPABILITIES && value instanceof asn1js.Sequence) {
      facts.capabilities = capabilitiesOf(value);
    } else if (attribute.type === ID_AA_ENCRYP_KEY_PREF && value) {
      const preferred = preferredCertificate(value, certificates);
      if (preferred) facts.encryptionCertificate = preferred;
    }
  }
  return facts;
}

/** SMIMECapabilities ::= SEQUENCE OF SEQUENCE { capabilityID OID, parameters ANY OPTIONAL } (RFC 8551 §2.5.2). */
function capabilitiesOf(sequence: asn1js.Sequence): SmimeCapabilities {
  const oids: string[] = [];
  for (const capability of sequence.valueBlock.value) {
    const id = capability instanceof asn1js.Sequence ? capability.valueBlock.value[0] : undefined;
    if (id instanceof asn1js.ObjectIdentifier) oids.push(id.valueBlock.toString());
  }
  // RC2 comes once per key length; a name is listed once, at its first (most preferred) place.
  const contentCiphers = [
    ...new Set(
      oids.flatMap((oid) => {
        const name = CAPABILITY_CIPHER_NAMES[oid];
        return name ? [name] : [];
      }),
    ),
  ];
  const capabilities: SmimeCapabilities = { contentCiphers, oids };
  if (oids.includes(ID_RSAES_OAEP)) capabilities.keyTransport = 'rsa-oaep';
  else if (oids.includes(RSA_ENCRYPTION)) capabilities.keyTransport = 'rsa-pkcs1v15';
  return capabilities;
}

/** SMIMEEncryptionKeyPreference: only the issuerAndSerialNumber [0] choice names a certificate we can find. */
function preferredCertificate(
  value: asn1js.AsnType,
  certificates: ReadonlyArray<{ parsed: pkijs.Certificate; der: Buffer }>,
): Buffer | undefined {
  if (!(value instanceof asn1js.Constructed) || value.idBlock.tagClass !== 3 || value.idBlock.tagNumber !== 0) {
    return undefined;
  }
  const [issuer, serial] = value.valueBlock.value;
  if (!issuer || !(serial instanceof asn1js.Integer)) return undefined;
  const issuerDer = Buffer.from(issuer.toBER(false));
  const serialBytes = Buffer.from(serial.valueBlock.valueHexView);
  return certificates.find(
    (c) =>
      Buffer.from(c.parsed.issuer.toSchema().toBER(false)).equals(issuerDer) &&
      Buffer.from(c.parsed.serialNumber.valueBlock.valueHexView).equals(serialBytes),
  )?.der;
}
