// Loading an agency's decryption keys from PKCS#12 (RFC 7292), as exported by mail clients and `openssl pkcs12`.
// pkijs checks the MAC and opens the password-encrypted SafeContents; node:crypto decrypts the shrouded keys
// (encrypted PKCS#8, PBES2 or the PKCS#12 3DES scheme).
import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import * as pkijs from 'pkijs';
import { SmimeError } from './errors.ts';

const KEY_BAG = '1.2.840.113549.1.12.10.1.1';
const PKCS8_SHROUDED_KEY_BAG = '1.2.840.113549.1.12.10.1.2';
const CERT_BAG = '1.2.840.113549.1.12.10.1.3';
const X509_CERTIFICATE = '1.2.840.113549.1.9.22.1';

export interface Pkcs12Contents {
  /** Each private key with the certificate of its public key (keys without one are left out). */
  readonly keys: ReadonlyArray<{ readonly certificate: Buffer; readonly privateKey: KeyObject }>;
  /** Every certificate in the file, DER (the keys' own and any chain). */
  readonly certificates: readonly Buffer[];
}

function failed(message: string, cause?: unknown): SmimeError {
  return new SmimeError('SMIME_PKCS12_FAILED', message, cause === undefined ? undefined : { cause });
}

const spkiOf = (key: KeyObject): Buffer =>
  (key.type === 'public' ? key : createPublicKey(key)).export({ format: 'der', type: 'spki' });

/** Opens a PKCS#12 file with its password: integrity (MAC) checked, keys decrypted and paired with their certificates. */
export async function parsePkcs12(bytes: Uint8Array, password: string): Promise<Pkcs12Contents> {
  const passwordBytes = new TextEncoder().encode(password);
  const passwordBuffer = passwordBytes.buffer.slice(0, passwordBytes.byteLength) as ArrayBuffer;
  let pfx: pkijs.PFX;
  try {
    pfx = pkijs.PFX.fromBER(bytes);
  } catch (cause) {
    throw failed('not a PKCS#12 file', cause);
  }
  const privateKeys: KeyObject[] = [];
  const certificates: Buffer[] = [];
  try {
    await pfx.parseInternalValues({ password: passwordBuffer, checkIntegrity: true });
    const authenticatedSafe = pfx.parsedValue?.authenticatedSafe;
    if (!authenticatedSafe) throw failed('PKCS#12 without content');
    await authenticatedSafe.parseInternalValues({
      safeContents: authenticatedSafe.safeContents.map(() => ({ password: passwordBuffer })),
    });
    for (const { value } of authenticatedSafe.parsedValue?.safeContents ?? []) {
      for (const bag of value.safeBags) {
        if (bag.bagId === KEY_BAG) {
          const der = Buffer.from((bag.bagValue as pkijs.PrivateKeyInfo).toSchema().toBER(false));
          privateKeys.push(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
        } else if (bag.bagId === PKCS8_SHROUDED_KEY_BAG) {
          const der = Buffer.from((bag.bagValue as pkijs.PKCS8ShroudedKeyBag).toSchema().toBER(false));
          privateKeys.push(
            createPrivateKey({ key: der, format: 'der', type: 'pkcs8', passphrase: Buffer.from(passwordBytes) }),
          );
        } else if (bag.bagId === CERT_BAG) {
          const certBag = bag.bagValue as pkijs.CertBag;
          if (certBag.certId !== X509_CERTIFICATE) continue;
          certificates.push(Buffer.from((certBag.certValue as { getValue(): ArrayBuffer }).getValue()));
        }
      }
    }
  } catch (cause) {
    if (cause instanceof SmimeError) throw cause;
    throw failed('PKCS#12 cannot be opened (wrong password, damaged file or unsupported encryption)', cause);
  }
  const withSpki = certificates.map((der) => ({ der, spki: spkiOf(new X509Certificate(der).publicKey) }));
  const keys = privateKeys.flatMap((privateKey) => {
    const spki = spkiOf(privateKey);
    const match = withSpki.find((c) => c.spki.equals(spki));
    return match ? [{ certificate: match.der, privateKey }] : [];
  });
  return { keys, certificates };
}
