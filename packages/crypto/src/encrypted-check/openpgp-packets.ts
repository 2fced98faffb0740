// A streaming walk over OpenPGP packet headers (RFC 9580 §4.2, old and new format, partial lengths) that checks an
// encrypted message has the only shape we let out as "already encrypted": one or more session-key packets (PKESK,
// SKESK), then exactly one encrypted-data packet (SEIPD, or the OCB AEAD packet) reaching to the very end.
// Packet contents are skipped, never held.

const PKESK = 1;
const SKESK = 3;
const SEIPD = 18;
const AEAD = 20;

export class OpenPgpShapeError extends Error {
  readonly code = 'OPENPGP_MALFORMED';
}

type State =
  | { kind: 'header' }
  /** Skipping a packet body (or one partial chunk of it); `partial`: more chunks follow. */
  | { kind: 'body'; remaining: number; partial: boolean }
  /** An old-format packet of indeterminate length: runs to the end of the data. */
  | { kind: 'to-end' };

export class OpenPgpPacketWalker {
  private state: State = { kind: 'header' };
  private pending = Buffer.alloc(0);
  private sessionKeyPackets = 0;
  private encryptedPacket: number | undefined;

  push(chunk: Buffer): void {
    let data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (data.length > 0) {
      const state = this.state;
      if (state.kind === 'to-end') return;
      if (state.kind === 'body') {
        const take = Math.min(state.remaining, data.length);
        state.remaining -= take;
        data = data.subarray(take);
        if (state.remaining === 0) {
          if (!state.partial) this.state = { kind: 'header' };
          else {
            const length = readLength(data, true);
            if (!length) {
              this.pending = Buffer.from(data);
              return;
            }
            data = data.subarray(length.size);
            this.state = { kind: 'body', remaining: length.length, partial: length.partial };
          }
        }
        continue;
      }
      if (this.encryptedPacket !== undefined) throw new OpenPgpShapeError('a packet after the encrypted data');
      const header = readPacketHeader(data);
      if (!header) {
        this.pending = Buffer.from(data);
        return;
      }
      data = data.subarray(header.size);
      this.accept(header.tag);
      this.state =
        header.length === undefined
          ? { kind: 'to-end' }
          : { kind: 'body', remaining: header.length, partial: header.partial };
      if (header.length === 0 && !header.partial) this.state = { kind: 'header' };
    }
  }

  /** Throws unless the data ended right after a complete encrypted-data packet. */
  end(): { sessionKeyPackets: number; encryptedPacket: number } {
    const complete =
      this.pending.length === 0 &&
      (this.state.kind === 'to-end' || this.state.kind === 'header') &&
      this.encryptedPacket !== undefined;
    if (!complete) throw new OpenPgpShapeError('the packets are incomplete or no encrypted data follows');
    return { sessionKeyPackets: this.sessionKeyPackets, encryptedPacket: this.encryptedPacket as number };
  }

  private accept(tag: number): void {
    if (tag === PKESK || tag === SKESK) {
      if (this.encryptedPacket !== undefined) throw new OpenPgpShapeError('a session key after the encrypted data');
      this.sessionKeyPackets++;
      return;
    }
    if (tag === SEIPD || tag === AEAD) {
      if (this.sessionKeyPackets === 0) throw new OpenPgpShapeError('encrypted data without a session key packet');
      this.encryptedPacket = tag;
      return;
    }
    throw new OpenPgpShapeError(`packet type ${tag} does not belong in an encrypted message`);
  }
}

interface PacketHeader {
  size: number;
  tag: number;
  /** undefined: old-format indeterminate length. */
  length: number | undefined;
  partial: boolean;
}

function readPacketHeader(data: Buffer): PacketHeader | undefined {
  const first = data[0] as number;
  if ((first & 0x80) === 0) throw new OpenPgpShapeError('not an OpenPGP packet header');
  if (first & 0x40) {
    const length = readLength(data.subarray(1), true);
    if (!length) return undefined;
    return { size: 1 + length.size, tag: first & 0x3f, length: length.length, partial: length.partial };
  }
  const tag = (first >> 2) & 0x0f;
  const lengthType = first & 0x03;
  if (lengthType === 3) return { size: 1, tag, length: undefined, partial: false };
  const octets = [1, 2, 4][lengthType] as number;
  if (data.length < 1 + octets) return undefined;
  let length = 0;
  for (let i = 1; i <= octets; i++) length = length * 256 + (data[i] as number);
  return { size: 1 + octets, tag, length, partial: false };
}

/** A new-format length (RFC 9580 §4.2.1); undefined when more bytes are needed. */
function readLength(
  data: Buffer,
  partialAllowed: boolean,
): { size: number; length: number; partial: boolean } | undefined {
  if (data.length < 1) return undefined;
  const first = data[0] as number;
  if (first < 192) return { size: 1, length: first, partial: false };
  if (first < 224) {
    if (data.length < 2) return undefined;
    return { size: 2, length: ((first - 192) << 8) + (data[1] as number) + 192, partial: false };
  }
  if (first === 255) {
    if (data.length < 5) return undefined;
    return { size: 5, length: data.readUInt32BE(1), partial: false };
  }
  if (!partialAllowed) throw new OpenPgpShapeError('partial length not allowed here');
  return { size: 1, length: 1 << (first & 0x1f), partial: true };
}
