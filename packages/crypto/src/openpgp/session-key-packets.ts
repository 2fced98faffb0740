// Public-Key Encrypted Session Key packets (tag 1, version 3; RFC 4880 §5.1, RFC 6637 §8) written with node:crypto
// for the two kinds of key gpg makes: RSA (PKCS#1 v1.5) and ECDH on Curve25519 (the legacy cv25519 form). openpgp
// does the same work in JS and through WebCrypto at several times the cost; any other kind of key is left to
// openpgp.encryptSessionKey, so every key openpgp accepts still works.
import {
  constants,
  createCipheriv,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
  publicEncrypt,
} from 'node:crypto';
import type * as openpgp from 'openpgp';
import { definiteLength } from './seipd-v1-writer.ts';

const TAG_PKESK = 1;
const PKESK_VERSION_3 = 3;
const ALGO_RSA_ENCRYPT_SIGN = 1;
const ALGO_RSA_ENCRYPT = 2;
const ALGO_ECDH = 18;
const SYMMETRIC_AES256 = 9;
const CURVE25519_LEGACY_OID = '2b060104019755010501'; // 1.3.6.1.4.1.3029.1.5.1
const CURVE25519_PREFIX = 0x40; // native point encoding marker of the legacy Curve25519 form
const HASH_NODE_NAMES: Record<number, string> = { 8: 'sha256', 9: 'sha384', 10: 'sha512' };
const KEK_CIPHERS: Record<number, { name: string; bytes: number }> = {
  7: { name: 'id-aes128-wrap', bytes: 16 },
  8: { name: 'id-aes192-wrap', bytes: 24 },
  9: { name: 'id-aes256-wrap', bytes: 32 },
};
const AES_WRAP_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
const ANONYMOUS_SENDER = Buffer.from('Anonymous Sender    ', 'latin1');
const KDF_COUNTER_1 = Buffer.from([0, 0, 0, 1]);
/** Bit count of a 33-octet MPI whose first octet is 0x40 (263 bits), and that octet. */
const EPHEMERAL_MPI_START = Buffer.from([0x01, 0x07, CURVE25519_PREFIX]);

/** An encryption (sub)key packet as openpgp gives it, with what the packet writer needs. */
type EncryptionKeyPacket = openpgp.PublicKeyPacket | openpgp.PublicSubkeyPacket;

interface RsaParams {
  n: Uint8Array;
  e: Uint8Array;
}
interface EcdhParams {
  oid: { toHex(): string; write(): Uint8Array };
  Q: Uint8Array;
  kdfParams: { hash: number; cipher: number; write(): Uint8Array };
}

/** What a PKESK for one key packet needs besides the session key, worked out once per key packet. */
interface PreparedKey {
  /** Version, key ID and algorithm octets: the start of the packet body. */
  readonly bodyStart: Buffer;
  readonly nodeKey: KeyObject;
  /** ECDH only: the KDF's fixed input (RFC 6637 §8), its hash and the key wrap cipher. */
  readonly ecdh?: { readonly param: Buffer; readonly hash: string; readonly kek: { name: string; bytes: number } };
}

// Per key packet (which the parsed-key cache keeps alive): the Node key object made from openpgp's key parameters
// and the constant parts of the packet.
const preparedKeys = new WeakMap<object, PreparedKey>();

/** True when `sessionKeyPackets` can write the packet for this key itself. */
export function writesNatively(keyPacket: EncryptionKeyPacket): boolean {
  if (keyPacket.version !== 4) return false;
  const algorithm = keyPacket.algorithm as number;
  if (algorithm === ALGO_RSA_ENCRYPT_SIGN || algorithm === ALGO_RSA_ENCRYPT) return true;
  if (algorithm !== ALGO_ECDH) return false;
  const { oid, Q, kdfParams } = publicParams<EcdhParams>(keyPacket);
  return (
    oid.toHex() === CURVE25519_LEGACY_OID &&
    Q.length === 33 &&
    Q[0] === CURVE25519_PREFIX &&
    HASH_NODE_NAMES[kdfParams.hash] !== undefined &&
    KEK_CIPHERS[kdfParams.cipher] !== undefined
  );
}

/** One PKESK packet (header included) that gives `sessionKey` (AES-256) to the holder of `keyPacket`. */
export function sessionKeyPacket(keyPacket: EncryptionKeyPacket, sessionKey: Buffer): Buffer {
  const key = preparedKey(keyPacket);
  const block = sessionKeyBlock(sessionKey);
  const fields = key.ecdh ? ecdhFields(key.nodeKey, key.ecdh, block) : rsaFields(key.nodeKey, block);
  block.fill(0);
  const bodyLength = key.bodyStart.length + fields.length;
  return Buffer.concat([Buffer.from([0xc0 | TAG_PKESK]), definiteLength(bodyLength), key.bodyStart, fields]);
}

function preparedKey(keyPacket: EncryptionKeyPacket): PreparedKey {
  let key = preparedKeys.get(keyPacket);
  if (key) return key;
  const algorithm = keyPacket.algorithm as number;
  const bodyStart = Buffer.concat([
    Buffer.from([PKESK_VERSION_3]),
    Buffer.from(keyPacket.getKeyID().toHex(), 'hex'),
    Buffer.from([algorithm]),
  ]);
  if (algorithm === ALGO_ECDH) {
    const { oid, Q, kdfParams } = publicParams<EcdhParams>(keyPacket);
    const nodeKey = createPublicKey({
      key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(Q.subarray(1)).toString('base64url') },
      format: 'jwk',
    });
    const param = Buffer.concat([
      oid.write(),
      Buffer.from([ALGO_ECDH]),
      kdfParams.write(),
      ANONYMOUS_SENDER,
      keyPacket.getFingerprintBytes() as Uint8Array,
    ]);
    const hash = HASH_NODE_NAMES[kdfParams.hash] as string;
    const kek = KEK_CIPHERS[kdfParams.cipher] as { name: string; bytes: number };
    key = { bodyStart, nodeKey, ecdh: { param, hash, kek } };
  } else {
    const { n, e } = publicParams<RsaParams>(keyPacket);
    const nodeKey = createPublicKey({
      key: { kty: 'RSA', n: Buffer.from(n).toString('base64url'), e: Buffer.from(e).toString('base64url') },
      format: 'jwk',
    });
    key = { bodyStart, nodeKey };
  }
  preparedKeys.set(keyPacket, key);
  return key;
}

/** Cipher algorithm octet, key, two-octet sum of the key octets (RFC 4880 §5.1). */
function sessionKeyBlock(sessionKey: Buffer): Buffer {
  let sum = 0;
  for (const byte of sessionKey) sum = (sum + byte) & 0xffff;
  const block = Buffer.allocUnsafe(sessionKey.length + 3);
  block[0] = SYMMETRIC_AES256;
  sessionKey.copy(block, 1);
  block[sessionKey.length + 1] = sum >> 8;
  block[sessionKey.length + 2] = sum & 0xff;
  return block;
}

function rsaFields(key: KeyObject, block: Buffer): Buffer {
  return mpi(publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, block));
}

/** RFC 6637 §8 with X25519: ephemeral key, shared secret, KDF over the key's parameters, AES key wrap. */
function ecdhFields(recipient: KeyObject, ecdh: NonNullable<PreparedKey['ecdh']>, block: Buffer): Buffer {
  const ephemeral = generateKeyPairSync('x25519');
  // The raw public value from a JWK export: the generator's own SPKI DER encoding cost as much as the key generation.
  const ephemeralPublic = Buffer.from(ephemeral.publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient });
  const kekBytes = createHash(ecdh.hash)
    .update(KDF_COUNTER_1)
    .update(shared)
    .update(ecdh.param)
    .digest()
    .subarray(0, ecdh.kek.bytes);
  shared.fill(0);
  const padding = 8 - (block.length % 8); // PKCS#5 to a multiple of 8 octets
  const padded = Buffer.alloc(block.length + padding, padding);
  block.copy(padded);
  const wrap = createCipheriv(ecdh.kek.name, kekBytes, AES_WRAP_IV);
  const wrapped = Buffer.concat([wrap.update(padded), wrap.final()]);
  padded.fill(0);
  kekBytes.fill(0);
  // MPI of the native point: 0x40 then the 32-byte u-coordinate, 263 bits (RFC 6637 §8, legacy Curve25519 form).
  return Buffer.concat([EPHEMERAL_MPI_START, ephemeralPublic, Buffer.from([wrapped.length]), wrapped]);
}

/** An OpenPGP multiprecision integer: bit count, then the value without leading zero octets (RFC 4880 §3.2). */
function mpi(value: Buffer): Buffer {
  let start = 0;
  while (start < value.length && value[start] === 0) start++;
  const digits = value.subarray(start);
  const bits = digits.length === 0 ? 0 : (digits.length - 1) * 8 + (32 - Math.clz32(digits[0] as number));
  return Buffer.concat([Buffer.from([bits >> 8, bits & 0xff]), digits]);
}

function publicParams<T>(keyPacket: EncryptionKeyPacket): T {
  return (keyPacket as unknown as { publicParams: T }).publicParams;
}
