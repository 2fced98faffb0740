// RecipientInfo (RFC 5652 §6.2): build one per recipient certificate, and unwrap the content-encryption key (CEK)
// from one addressed to a key we hold. RSA key transport (PKCS#1 v1.5, OAEP) and ECDH ephemeral-static (RFC 5753).
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createECDH,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
} from 'node:crypto';
import type * as asn1js from 'asn1js';
import {
  contextConstructed,
  embedded,
  encodeDer,
  integer,
  integerOfBytes,
  nullValue,
  octetString,
  oid,
  sequence,
} from './asn1-build.ts';
import {
  type BerNode,
  expectUniversal,
  isContext,
  isUniversal,
  octetsOf,
  oidOf,
  TAG_CLASS_CONTEXT,
  TAG_CLASS_UNIVERSAL,
  UNIVERSAL_BIT_STRING,
  UNIVERSAL_OCTET_STRING,
  UNIVERSAL_SEQUENCE,
} from './ber-reader.ts';
import type { CertificateIdentity } from './certificate.ts';
import { derFrame, TAG_BIT_STRING, TAG_OCTET_STRING, TAG_SEQUENCE, tagContextConstructed } from './der-frame.ts';
import { SmimeError } from './errors.ts';
import {
  DH_SINGLE_PASS_STD_DH_SHA256_KDF,
  ECDH_KDF_HASH_BY_OID,
  HASH_BY_OID,
  ID_AES256_WRAP,
  ID_EC_PUBLIC_KEY,
  ID_MGF1,
  ID_P_SPECIFIED,
  ID_RSAES_OAEP,
  ID_SHA256,
  KEY_WRAP_BY_OID,
  RSA_ENCRYPTION,
} from './oids.ts';
import { x963Kdf } from './x963-kdf.ts';

export type KeyTransport = 'rsa-pkcs1v15' | 'rsa-oaep-sha256';

/** RFC 3394's default initial value for AES key wrap. */
const AES_WRAP_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

// Constant parts, encoded once with asn1js.
const VERSION_0 = encodeDer(integer(0));
const VERSION_3 = encodeDer(integer(3));
const RSA_PKCS1_ALGORITHM = encodeDer(sequence(oid(RSA_ENCRYPTION), nullValue()));
// RSAES-OAEP-params (RFC 4055): SHA-256 for the hash and for MGF1, the default (empty) label left out.
const RSA_OAEP_SHA256_ALGORITHM = encodeDer(
  sequence(
    oid(ID_RSAES_OAEP),
    sequence(
      contextConstructed(0, sequence(oid(ID_SHA256))),
      contextConstructed(1, sequence(oid(ID_MGF1), sequence(oid(ID_SHA256)))),
    ),
  ),
);
const AES256_WRAP_ALGORITHM = encodeDer(sequence(oid(ID_AES256_WRAP)));
const ECDH_SHA256KDF_AES256_WRAP_ALGORITHM = encodeDer(
  sequence(oid(DH_SINGLE_PASS_STD_DH_SHA256_KDF), embedded(AES256_WRAP_ALGORITHM)),
);
const EC_PUBLIC_KEY_ALGORITHM = encodeDer(sequence(oid(ID_EC_PUBLIC_KEY)));

/** ECC-CMS-SharedInfo (RFC 5753 §7.2), the KDF's other input: wrap algorithm, optional ukm, KEK length in bits. */
function eccCmsSharedInfo(keyWrapAlgorithmDer: Uint8Array, ukm: Buffer | undefined, kekLength: number): Buffer {
  const bits = Buffer.alloc(4);
  bits.writeUInt32BE(kekLength * 8);
  const parts: asn1js.BaseBlock[] = [embedded(keyWrapAlgorithmDer)];
  if (ukm) parts.push(contextConstructed(0, octetString(ukm)));
  parts.push(contextConstructed(2, octetString(bits)));
  return encodeDer(sequence(...parts));
}
const AES256_WRAP_SHARED_INFO = eccCmsSharedInfo(AES256_WRAP_ALGORITHM, undefined, 32);

// IssuerAndSerialNumber of a certificate, encoded once per certificate.
const issuerAndSerialCache = new WeakMap<CertificateIdentity, Buffer>();
function issuerAndSerialNumber(identity: CertificateIdentity): Buffer {
  let der = issuerAndSerialCache.get(identity);
  if (!der) {
    der = encodeDer(sequence(embedded(identity.issuerDer), integerOfBytes(identity.serialNumber)));
    issuerAndSerialCache.set(identity, der);
  }
  return der;
}

/** KeyTransRecipientInfo (version 0, issuerAndSerialNumber) for an RSA certificate, DER. */
export function keyTransRecipientInfo(identity: CertificateIdentity, cek: Buffer, transport: KeyTransport): Buffer {
  const oaep = transport === 'rsa-oaep-sha256';
  const encryptedKey = publicEncrypt(
    oaep
      ? { key: identity.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }
      : { key: identity.publicKey, padding: constants.RSA_PKCS1_PADDING },
    cek,
  );
  return derFrame(
    TAG_SEQUENCE,
    VERSION_0,
    issuerAndSerialNumber(identity),
    oaep ? RSA_OAEP_SHA256_ALGORITHM : RSA_PKCS1_ALGORITHM,
    derFrame(TAG_OCTET_STRING, encryptedKey),
  );
}

/**
 * KeyAgreeRecipientInfo (version 3, [1] in the RecipientInfo CHOICE) for an EC certificate, DER: a fresh ephemeral
 * key on the recipient's curve, dhSinglePass-stdDH-sha256kdf-scheme, and the CEK wrapped with AES-256 key wrap.
 */
export function keyAgreeRecipientInfo(identity: CertificateIdentity, cek: Buffer): Buffer {
  if (!identity.curve || !identity.publicPoint)
    throw new SmimeError('SMIME_INVALID_RECIPIENT', 'not an EC certificate');
  const ephemeral = createECDH(identity.curve);
  const ephemeralPoint = ephemeral.generateKeys();
  const sharedSecret = ephemeral.computeSecret(identity.publicPoint);
  const kek = x963Kdf('sha256', sharedSecret, AES256_WRAP_SHARED_INFO, 32);
  const wrap = createCipheriv('id-aes256-wrap', kek, AES_WRAP_IV);
  const wrappedKey = Buffer.concat([wrap.update(cek), wrap.final()]);
  const originatorKey = derFrame(
    tagContextConstructed(1), // originatorKey [1] IMPLICIT OriginatorPublicKey
    EC_PUBLIC_KEY_ALGORITHM,
    derFrame(TAG_BIT_STRING, Buffer.from([0]), ephemeralPoint),
  );
  return derFrame(
    tagContextConstructed(1),
    VERSION_3,
    derFrame(tagContextConstructed(0), originatorKey), // originator [0] EXPLICIT
    ECDH_SHA256KDF_AES256_WRAP_ALGORITHM,
    derFrame(
      TAG_SEQUENCE,
      derFrame(TAG_SEQUENCE, issuerAndSerialNumber(identity), derFrame(TAG_OCTET_STRING, wrappedKey)),
    ),
  );
}

// ---- Opening ----

/** A private key we hold for inbound decryption, with its certificate's identity. */
export interface RecipientKey {
  readonly identity: CertificateIdentity;
  readonly privateKey: KeyObject;
}

/** Whether a RecipientIdentifier (issuerAndSerialNumber, or [0] subjectKeyIdentifier) names this certificate. */
function identifies(rid: BerNode | undefined, identity: CertificateIdentity): boolean {
  if (rid === undefined) return false;
  if (rid.tagClass === TAG_CLASS_UNIVERSAL && rid.tagNumber === UNIVERSAL_SEQUENCE) {
    const [issuer, serial] = rid.children;
    return (
      issuer !== undefined &&
      serial !== undefined &&
      issuer.raw.equals(identity.issuerDer) &&
      serial.content.equals(identity.serialNumber)
    );
  }
  if (rid.tagClass === TAG_CLASS_CONTEXT && rid.tagNumber === 0 && identity.subjectKeyIdentifier) {
    // KeyTransRecipientInfo: [0] IMPLICIT SubjectKeyIdentifier (primitive). KeyAgree: [0] IMPLICIT RecipientKeyIdentifier.
    const ski = rid.constructed ? rid.children[0]?.content : rid.content;
    return ski?.equals(identity.subjectKeyIdentifier) === true;
  }
  return false;
}

function decryptFailed(message: string, cause?: unknown): SmimeError {
  return new SmimeError('SMIME_DECRYPT_FAILED', message, cause === undefined ? undefined : { cause });
}

function unsupported(message: string): SmimeError {
  return new SmimeError('SMIME_UNSUPPORTED_ALGORITHM', message);
}

/** Hash function of an AlgorithmIdentifier in RSAES-OAEP-params. */
function hashOf(algorithm: BerNode | undefined, what: string): string {
  const hash = HASH_BY_OID[oidOf(algorithm?.children[0], what)];
  if (!hash) throw unsupported(`${what} hash is not supported`);
  return hash;
}

function rsaDecryptCek(algorithm: BerNode, encryptedKey: Buffer, privateKey: KeyObject): Buffer {
  const algorithmOid = oidOf(algorithm.children[0], 'keyEncryptionAlgorithm');
  if (privateKey.asymmetricKeyType !== 'rsa')
    throw decryptFailed('key transport to an RSA key, but the key is not RSA');
  try {
    if (algorithmOid === RSA_ENCRYPTION) {
      // Safe on Node 24 (OpenSSL 3.2+ implicit rejection): a wrong key yields a random CEK, caught by the content check.
      return privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, encryptedKey);
    }
    if (algorithmOid === ID_RSAES_OAEP) {
      const params = algorithm.children[1];
      const fields = isUniversal(params, UNIVERSAL_SEQUENCE) ? params.children : [];
      // Absent fields take RFC 8017's defaults: SHA-1, MGF1 with SHA-1, empty label.
      const hashField = fields.find((n) => isContext(n, 0));
      const hash = hashField ? hashOf(hashField.children[0], 'OAEP') : 'sha1';
      const mgf = fields.find((n) => isContext(n, 1))?.children[0];
      if (mgf && oidOf(mgf.children[0], 'OAEP mask generation function') !== ID_MGF1) {
        throw unsupported('OAEP mask generation function');
      }
      const mgfHash = mgf ? hashOf(mgf.children[1], 'MGF1') : 'sha1';
      if (mgfHash !== hash) throw unsupported('OAEP with different hash and MGF1 hash');
      const pSource = fields.find((n) => isContext(n, 2));
      let label: Buffer | undefined;
      if (pSource) {
        const source = pSource.children[0];
        if (oidOf(source?.children[0], 'OAEP pSource') !== ID_P_SPECIFIED) throw unsupported('OAEP pSource');
        const value = source?.children[1];
        label = value
          ? octetsOf(expectUniversal(value, UNIVERSAL_OCTET_STRING, 'OAEP label'), 'OAEP label')
          : undefined;
      }
      return privateDecrypt(
        {
          key: privateKey,
          padding: constants.RSA_PKCS1_OAEP_PADDING,
          oaepHash: hash,
          ...(label && label.length > 0 ? { oaepLabel: label } : {}),
        },
        encryptedKey,
      );
    }
  } catch (cause) {
    if (cause instanceof SmimeError) throw cause;
    throw decryptFailed('RSA key transport could not be decrypted', cause);
  }
  throw unsupported(`key transport algorithm ${algorithmOid}`);
}

/** Tries one KeyTransRecipientInfo against our keys; undefined when it is addressed to none of them. */
function openKeyTrans(ri: BerNode, keys: readonly RecipientKey[]): Buffer | undefined {
  const [, rid, algorithm, encryptedKey] = ri.children;
  const key = keys.find((k) => identifies(rid, k.identity));
  if (!key) return undefined;
  expectUniversal(algorithm, UNIVERSAL_SEQUENCE, 'keyEncryptionAlgorithm');
  const encrypted = octetsOf(expectUniversal(encryptedKey, UNIVERSAL_OCTET_STRING, 'encryptedKey'), 'encryptedKey');
  return rsaDecryptCek(algorithm as BerNode, encrypted, key.privateKey);
}

/** The originator's ephemeral public point from originator [0] { originatorKey [1] { algorithm, publicKey } }. */
function originatorPoint(originator: BerNode | undefined): Buffer {
  if (!isContext(originator, 0)) throw new SmimeError('SMIME_MALFORMED', 'KeyAgreeRecipientInfo without originator');
  const choice = originator.children[0];
  if (!isContext(choice, 1)) throw unsupported('ECDH originator other than an ephemeral originatorKey');
  const [algorithm, publicKey] = choice.children;
  if (oidOf(algorithm?.children[0], 'originatorKey algorithm') !== ID_EC_PUBLIC_KEY)
    throw unsupported('originatorKey type');
  const bits = expectUniversal(publicKey, UNIVERSAL_BIT_STRING, 'originatorKey publicKey');
  if (bits.content.length < 2 || bits.content[0] !== 0) throw new SmimeError('SMIME_MALFORMED', 'bad originatorKey');
  return bits.content.subarray(1);
}

function ecSharedSecret(privateKey: KeyObject, point: Buffer): Buffer {
  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  const d = privateKey.export({ format: 'jwk' }).d;
  if (!curve || !d) throw decryptFailed('EC private key without a named curve');
  try {
    const ecdh = createECDH(curve);
    ecdh.setPrivateKey(Buffer.from(d, 'base64url'));
    return ecdh.computeSecret(point);
  } catch (cause) {
    throw decryptFailed('ECDH with the originator key failed', cause);
  }
}

/** Tries one KeyAgreeRecipientInfo ([1] IMPLICIT) against our EC keys. */
function openKeyAgree(ri: BerNode, keys: readonly RecipientKey[]): Buffer | undefined {
  const fields = ri.children;
  const originator = fields[1];
  let index = 2;
  let ukm: Buffer | undefined;
  if (isContext(fields[index], 1)) {
    ukm = octetsOf(expectUniversal(fields[index]?.children[0], UNIVERSAL_OCTET_STRING, 'ukm'), 'ukm');
    index++;
  }
  const algorithm = expectUniversal(fields[index], UNIVERSAL_SEQUENCE, 'keyEncryptionAlgorithm');
  const encryptedKeys = expectUniversal(fields[index + 1], UNIVERSAL_SEQUENCE, 'recipientEncryptedKeys');
  for (const rek of encryptedKeys.children) {
    const key = keys.find((k) => identifies(rek.children[0], k.identity));
    if (!key) continue;
    if (key.privateKey.asymmetricKeyType !== 'ec')
      throw decryptFailed('key agreement to an EC key, but the key is not EC');
    const schemeOid = oidOf(algorithm.children[0], 'key agreement algorithm');
    const kdfHash = ECDH_KDF_HASH_BY_OID[schemeOid];
    if (!kdfHash) throw unsupported(`key agreement algorithm ${schemeOid}`);
    const wrapAlgorithm = expectUniversal(algorithm.children[1], UNIVERSAL_SEQUENCE, 'key wrap algorithm');
    const wrapOid = oidOf(wrapAlgorithm.children[0], 'key wrap algorithm');
    const wrap = KEY_WRAP_BY_OID[wrapOid];
    if (!wrap) throw unsupported(`key wrap algorithm ${wrapOid}`);
    const wrapped = octetsOf(expectUniversal(rek.children[1], UNIVERSAL_OCTET_STRING, 'encryptedKey'), 'encryptedKey');
    const sharedSecret = ecSharedSecret(key.privateKey, originatorPoint(originator));
    const kek = x963Kdf(
      kdfHash,
      sharedSecret,
      eccCmsSharedInfo(wrapAlgorithm.raw, ukm, wrap.keyLength),
      wrap.keyLength,
    );
    try {
      const unwrap = createDecipheriv(wrap.cipher, kek, wrap.aesInitialValue ? AES_WRAP_IV : null);
      return Buffer.concat([unwrap.update(wrapped), unwrap.final()]);
    } catch (cause) {
      throw decryptFailed('AES key unwrap failed (wrong key or damaged message)', cause);
    }
  }
  return undefined;
}

/**
 * The CEK from the first RecipientInfo addressed to one of our keys. Kinds we do not open (KEK, password, other)
 * are skipped; none addressed to us is SMIME_NO_MATCHING_RECIPIENT.
 */
export function openRecipientInfos(recipientInfos: BerNode, keys: readonly RecipientKey[]): Buffer {
  for (const ri of recipientInfos.children) {
    const cek = isUniversal(ri, UNIVERSAL_SEQUENCE)
      ? openKeyTrans(ri, keys)
      : isContext(ri, 1)
        ? openKeyAgree(ri, keys)
        : undefined;
    if (cek) return cek;
  }
  throw new SmimeError('SMIME_NO_MATCHING_RECIPIENT', 'the message is not encrypted to any key we hold');
}
