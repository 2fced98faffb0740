// An OpenPGP message whose encrypted content (the literal data packet inside the SEIPD packet) is framed in partial
// body lengths of 1 byte (RFC 9580 §4.2.1.4): valid OpenPGP that openpgp reads at about 1 s of CPU per MB. Nothing
// outside the encryption shows it, so only a time limit on the decryption bounds it. For tests only:
// `@smgw/crypto/testing`.
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import * as openpgp from 'openpgp';

const TAG_LITERAL_DATA = 11;
const TAG_SEIPD = 18;
const TAG_MDC = 19;
/** The first part of a partial-length body must be at least 512 bytes (RFC 9580 §4.2.1.4). */
const FIRST_PART_EXPONENT = 9;

/**
 * Armored OpenPGP data encrypted to `recipient` (armored public key; AES-256, SEIPDv1) whose literal data packet holds
 * `content`: its first 512 bytes as one part, every later byte as a partial body of its own, the last byte with a
 * definite length.
 */
export async function encryptWithTinyPartials(recipient: string, content: Buffer): Promise<string> {
  const sessionKey = randomBytes(32);
  const sessionKeyPackets = await openpgp.encryptSessionKey({
    data: sessionKey,
    algorithm: 'aes256',
    encryptionKeys: await openpgp.readKey({ armoredKey: recipient }),
    format: 'binary',
  });
  const literalBody = Buffer.concat([Buffer.from([0x62, 0, 0, 0, 0, 0]), content]);
  const plain = Buffer.concat([tinyPartialPacket(TAG_LITERAL_DATA, literalBody), Buffer.from([0xc0 | TAG_MDC, 20])]);
  const prefix = randomBytes(18);
  prefix[16] = prefix[14] as number;
  prefix[17] = prefix[15] as number;
  const mdc = createHash('sha1').update(prefix).update(plain).digest();
  const cipher = createCipheriv('aes-256-cfb', sessionKey, Buffer.alloc(16));
  const encrypted = Buffer.concat([cipher.update(Buffer.concat([prefix, plain, mdc])), cipher.final()]);
  const seipdBody = Buffer.concat([Buffer.from([1]), encrypted]);
  const seipd = Buffer.concat([Buffer.from([0xc0 | TAG_SEIPD, 0xff]), uint32(seipdBody.length), seipdBody]);
  const binary = Buffer.concat([Buffer.from(sessionKeyPackets as Uint8Array), seipd]);
  return openpgp.armor(openpgp.enums.armor.message, binary);
}

function tinyPartialPacket(tag: number, body: Buffer): Buffer {
  const first = 1 << FIRST_PART_EXPONENT;
  if (body.length <= first + 1) throw new RangeError('the body must be longer than its first part');
  const parts: Buffer[] = [Buffer.from([0xc0 | tag, 0xe0 | FIRST_PART_EXPONENT]), body.subarray(0, first)];
  const last = body.length - 1;
  // One header octet (0xe0: 2^0 = 1 byte, more follow) before each byte, then the last byte with a definite length.
  const middle = Buffer.alloc((last - first) * 2, 0xe0);
  for (let i = first; i < last; i++) middle[(i - first) * 2 + 1] = body[i] as number;
  parts.push(middle, Buffer.from([1]), body.subarray(last));
  return Buffer.concat(parts);
}

function uint32(value: number): Buffer {
  const four = Buffer.alloc(4);
  four.writeUInt32BE(value);
  return four;
}
