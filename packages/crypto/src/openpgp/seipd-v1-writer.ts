// The symmetric half of an OpenPGP message written with node:crypto: a literal data packet (tag 11, binary) inside a
// Symmetrically Encrypted Integrity Protected Data packet version 1 (tag 18, RFC 4880 §5.13 / RFC 9580 §5.13.1):
// AES-256 in OpenPGP's CFB mode, which for SEIPD is plain CFB with an IV of zeros over a random prefix (one block
// plus its last two bytes repeated), then the plaintext packets, then the MDC packet (0xD3 0x14 + SHA-1 over
// prefix, plaintext packets and those two header bytes). Both packets use partial body lengths (RFC 4880 §4.2.2.4),
// so what is held does not grow with the message.
import { type Cipheriv, createCipheriv, createHash, type Hash, randomBytes } from 'node:crypto';

const TAG_LITERAL_DATA = 11;
const TAG_SEIPD = 18;
const SEIPD_VERSION_1 = 0x01;
const LITERAL_FORMAT_BINARY = 0x62; // 'b'
const MDC_HEADER = Buffer.from([0xd3, 0x14]);
const AES_BLOCK_BYTES = 16;
const PREFIX_BYTES = AES_BLOCK_BYTES + 2;
/** Pieces below this size are joined before they go to the cipher and the hash. */
const JOIN_BELOW_BYTES = 512;

/** Size of each partial body: 2^16 bytes (a power of two ≥ 512 as RFC 4880 requires for the first part). */
const PARTIAL_EXPONENT = 16;
const PARTIAL_BYTES = 1 << PARTIAL_EXPONENT;

/**
 * Frames one packet of unknown length with the new packet format: a partial body length for every full part while
 * more data follows, a definite length for the last part (RFC 4880 §4.2.2). The data is never copied, only sliced.
 */
export class PartialLengthPacketWriter {
  readonly #tagOctet: Buffer;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #tagWritten = false;

  constructor(tag: number) {
    this.#tagOctet = Buffer.from([0xc0 | tag]);
  }

  /** Appends `data`; the framed bytes ready so far are pushed onto `out`. */
  write(data: Buffer, out: Buffer[]): void {
    if (data.length === 0) return;
    this.#pending.push(data);
    this.#pendingBytes += data.length;
    // Strictly more than one part: the last part must carry a definite length, so a full part is only written once
    // it is known that more data follows.
    while (this.#pendingBytes > PARTIAL_BYTES) {
      this.#writeTag(out);
      out.push(Buffer.from([0xe0 | PARTIAL_EXPONENT]));
      let needed = PARTIAL_BYTES;
      while (needed > 0) {
        const first = this.#pending[0] as Buffer;
        if (first.length <= needed) {
          out.push(first);
          this.#pending.shift();
          needed -= first.length;
        } else {
          out.push(first.subarray(0, needed));
          this.#pending[0] = first.subarray(needed);
          needed = 0;
        }
      }
      this.#pendingBytes -= PARTIAL_BYTES;
    }
  }

  /** The last part with its definite length. */
  end(out: Buffer[]): void {
    this.#writeTag(out);
    out.push(definiteLength(this.#pendingBytes), ...this.#pending);
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  #writeTag(out: Buffer[]): void {
    if (this.#tagWritten) return;
    this.#tagWritten = true;
    out.push(this.#tagOctet);
  }
}

/** A new-format definite body length (RFC 4880 §4.2.2.1–3). */
export function definiteLength(length: number): Buffer {
  if (length < 192) return Buffer.from([length]);
  if (length < 8384) {
    const rest = length - 192;
    return Buffer.from([(rest >> 8) + 192, rest & 0xff]);
  }
  const five = Buffer.alloc(5);
  five[0] = 0xff;
  five.writeUInt32BE(length, 1);
  return five;
}

/**
 * Encrypts a stream of content into one SEIPDv1 packet holding one literal data packet. `write` and `end` return the
 * finished binary bytes (header octets and ciphertext slices) in order.
 */
export class SeipdV1Writer {
  readonly #literal = new PartialLengthPacketWriter(TAG_LITERAL_DATA);
  readonly #seipd = new PartialLengthPacketWriter(TAG_SEIPD);
  readonly #mdc: Hash = createHash('sha1');
  readonly #cipher: Cipheriv;
  /** The random prefix, encrypted together with the first plaintext. */
  #plainStart: Buffer | undefined;

  /**
   * `sessionKey`: 32 bytes for AES-256. `date`: the literal packet's date (whole seconds are written).
   * `randomPrefix`: 18 random bytes (default: fresh ones); the last two are replaced by a copy of bytes 15 and 16.
   */
  constructor(sessionKey: Buffer, date: Date, randomPrefix: Buffer = randomBytes(PREFIX_BYTES)) {
    if (sessionKey.length !== 32) throw new RangeError('the AES-256 session key must have 32 bytes');
    if (randomPrefix.length !== PREFIX_BYTES) throw new RangeError(`the random prefix must have ${PREFIX_BYTES} bytes`);
    this.#cipher = createCipheriv('aes-256-cfb', sessionKey, Buffer.alloc(AES_BLOCK_BYTES));
    const prefix = Buffer.from(randomPrefix);
    prefix[AES_BLOCK_BYTES] = prefix[AES_BLOCK_BYTES - 2] as number;
    prefix[AES_BLOCK_BYTES + 1] = prefix[AES_BLOCK_BYTES - 1] as number;
    // Literal data header: format, empty file name, date (RFC 4880 §5.9).
    const literalHeader = Buffer.alloc(6);
    literalHeader[0] = LITERAL_FORMAT_BINARY;
    literalHeader[1] = 0;
    literalHeader.writeUInt32BE(Math.floor(date.getTime() / 1000) >>> 0, 2);
    this.#literal.write(literalHeader, []); // held back: under one part
    this.#plainStart = prefix;
  }

  /** The binary bytes for the next content chunk. */
  write(content: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const plain: Buffer[] = [];
    this.#literal.write(content, plain);
    this.#encrypt(plain, out);
    return out;
  }

  /** The rest: the literal packet's last part, the MDC packet, the SEIPD packet's last part. */
  end(): Buffer[] {
    const out: Buffer[] = [];
    const plain: Buffer[] = [];
    this.#literal.end(plain);
    this.#encrypt(plain, out);
    // The MDC packet: its two header octets are hashed too, then encrypted together with the hash.
    this.#mdc.update(MDC_HEADER);
    const mdcPacket = Buffer.concat([MDC_HEADER, this.#mdc.digest()]);
    this.#seipd.write(this.#cipher.update(mdcPacket), out);
    this.#seipd.write(this.#cipher.final(), out);
    this.#seipd.end(out);
    return out;
  }

  // Small pieces (header octets, the prefix) are joined, so the cipher and the hash see few buffers per chunk (each
  // call into OpenSSL has a fixed cost, which dominated small messages); the content itself is passed on as it is,
  // never copied into a joined buffer (fresh memory costs more than the calls saved).
  #encrypt(plain: Buffer[], out: Buffer[]): void {
    if (plain.length === 0) return;
    if (this.#plainStart) {
      plain.unshift(this.#plainStart);
      this.#plainStart = undefined;
      this.#seipd.write(Buffer.from([SEIPD_VERSION_1]), out);
    }
    let small: Buffer[] = [];
    for (const piece of plain) {
      if (piece.length < JOIN_BELOW_BYTES) {
        small.push(piece);
        continue;
      }
      if (small.length > 0) this.#update(small.length === 1 ? (small[0] as Buffer) : Buffer.concat(small), out);
      small = [];
      this.#update(piece, out);
    }
    if (small.length > 0) this.#update(small.length === 1 ? (small[0] as Buffer) : Buffer.concat(small), out);
  }

  #update(plain: Buffer, out: Buffer[]): void {
    this.#mdc.update(plain);
    this.#seipd.write(this.#cipher.update(plain), out);
  }
}
