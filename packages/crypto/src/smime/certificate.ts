// What the S/MIME layer needs from an X.509 certificate: how to name it in a RecipientInfo and its public key.
import { type KeyObject, X509Certificate } from 'node:crypto';
import {
  type BerNode,
  expectUniversal,
  isContext,
  isUniversal,
  octetsOf,
  oidOf,
  readBer,
  UNIVERSAL_OCTET_STRING,
  UNIVERSAL_SEQUENCE,
} from './ber-reader.ts';
import { SmimeError } from './errors.ts';
import { ID_CE_SUBJECT_KEY_IDENTIFIER } from './oids.ts';

/** A certificate as DER bytes or PEM text. */
export type CertificateInput = Uint8Array | string;

export interface CertificateIdentity {
  readonly der: Buffer;
  /** DER of the issuer Name and content octets of the serialNumber INTEGER, as in IssuerAndSerialNumber. */
  readonly issuerDer: Buffer;
  readonly serialNumber: Buffer;
  readonly subjectKeyIdentifier: Buffer | undefined;
  readonly publicKey: KeyObject;
  readonly keyType: 'rsa' | 'ec';
  /** For EC keys: the node curve name and the uncompressed public point. */
  readonly curve: string | undefined;
  readonly publicPoint: Buffer | undefined;
}

const PEM_CERTIFICATE =
  /-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END (?:X509 |TRUSTED )?CERTIFICATE-----/;

/** DER bytes of a certificate given as DER or PEM. */
export function certificateDer(input: CertificateInput): Buffer {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input);
  if (bytes[0] === 0x30) return bytes;
  const pem = PEM_CERTIFICATE.exec(bytes.toString('latin1'));
  if (!pem?.[1]) throw new SmimeError('SMIME_INVALID_RECIPIENT', 'certificate is neither DER nor PEM');
  return Buffer.from(pem[1], 'base64');
}

function subjectKeyIdentifierOf(tbsChildren: readonly BerNode[]): Buffer | undefined {
  const extensionsWrapper = tbsChildren.find((n) => isContext(n, 3));
  const extensions = extensionsWrapper?.children[0];
  if (!isUniversal(extensions, UNIVERSAL_SEQUENCE)) return undefined;
  for (const extension of extensions.children) {
    if (oidOf(extension.children[0], 'extension id') !== ID_CE_SUBJECT_KEY_IDENTIFIER) continue;
    const value = extension.children[extension.children.length - 1];
    if (!isUniversal(value, UNIVERSAL_OCTET_STRING)) return undefined;
    const inner = readBer(octetsOf(value, 'subjectKeyIdentifier'));
    return isUniversal(inner, UNIVERSAL_OCTET_STRING) ? inner.content : undefined;
  }
  return undefined;
}

function identityOf(der: Buffer): CertificateIdentity {
  let publicKey: KeyObject;
  try {
    publicKey = new X509Certificate(der).publicKey;
  } catch (cause) {
    throw new SmimeError('SMIME_INVALID_RECIPIENT', 'certificate cannot be parsed', { cause });
  }
  let issuerDer: Buffer;
  let serialNumber: Buffer;
  let subjectKeyIdentifier: Buffer | undefined;
  try {
    const tbs = expectUniversal(readBer(der).children[0], UNIVERSAL_SEQUENCE, 'tbsCertificate');
    // version is an optional [0]; serialNumber and issuer follow it at fixed positions.
    const offset = isContext(tbs.children[0], 0) ? 1 : 0;
    serialNumber = expectUniversal(tbs.children[offset], 2, 'serialNumber').content;
    issuerDer = expectUniversal(tbs.children[offset + 2], UNIVERSAL_SEQUENCE, 'issuer').raw;
    subjectKeyIdentifier = subjectKeyIdentifierOf(tbs.children);
  } catch (cause) {
    throw new SmimeError('SMIME_INVALID_RECIPIENT', 'certificate fields cannot be read', { cause });
  }
  const type = publicKey.asymmetricKeyType;
  if (type === 'rsa') {
    return {
      der,
      issuerDer,
      serialNumber,
      subjectKeyIdentifier,
      publicKey,
      keyType: 'rsa',
      curve: undefined,
      publicPoint: undefined,
    };
  }
  if (type === 'ec') {
    const curve = publicKey.asymmetricKeyDetails?.namedCurve;
    const jwk = publicKey.export({ format: 'jwk' });
    if (!curve || !jwk.x || !jwk.y)
      throw new SmimeError('SMIME_INVALID_RECIPIENT', 'EC certificate without a named curve');
    const publicPoint = Buffer.concat([
      Buffer.from([4]),
      Buffer.from(jwk.x, 'base64url'),
      Buffer.from(jwk.y, 'base64url'),
    ]);
    return { der, issuerDer, serialNumber, subjectKeyIdentifier, publicKey, keyType: 'ec', curve, publicPoint };
  }
  throw new SmimeError('SMIME_UNSUPPORTED_ALGORITHM', `certificate key type ${type ?? 'unknown'} is not supported`);
}

// Recipients recur (the same agencies and partners all day): parsing a certificate and importing its key costs more
// than the RSA operation itself, so identities are kept in a small bounded cache keyed by the DER bytes.
const CACHE_LIMIT = 512;
const cache = new Map<string, CertificateIdentity>();

export function certificateIdentity(input: CertificateInput): CertificateIdentity {
  // PEM text is its own key (no decoding on a hit); DER bytes are keyed by their latin1 string.
  const key =
    typeof input === 'string'
      ? input
      : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('latin1');
  const cached = cache.get(key);
  if (cached) return cached;
  const identity = identityOf(certificateDer(input));
  if (cache.size >= CACHE_LIMIT) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  cache.set(key, identity);
  return identity;
}
