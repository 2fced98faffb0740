// Loading an agency's decryption keys from PKCS#12 (RFC 7292), as exported by mail clients and `openssl pkcs12`.
// pkijs checks the MAC and opens the password-encrypted SafeContents; node:crypto decrypts the shrouded keys
// (encrypted PKCS#8, PBES2 or the PKCS#12 3DES scheme). The file says how many iterations each password step takes;
// they are counted against PKCS12_ITERATION_LIMITS before any step runs (the file comes from outside: an agency).
import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { SmimeError } from './errors.ts';

const KEY_BAG = '1.2.840.113549.1.12.10.1.1';
const PKCS8_SHROUDED_KEY_BAG = '1.2.840.113549.1.12.10.1.2';
const CERT_BAG = '1.2.840.113549.1.12.10.1.3';
const X509_CERTIFICATE = '1.2.840.113549.1.9.22.1';
const ENCRYPTED_DATA = '1.2.840.113549.1.7.6';
const PBES2 = '1.2.840.113549.1.5.13';
const PBKDF2 = '1.2.840.113549.1.5.12';
/** PKCS#12 PBE (pbeWithSHAAnd3-KeyTripleDES-CBC …, RFC 7292 appendix C) and PKCS#5 PBES1: params {salt, iterations}. */
const SALT_AND_ITERATIONS_SCHEMES = /^1\.2\.840\.113549\.1\.(12\.1\.[1-6]|5\.(1|3|4|6|10|11))$/;

/**
 * Password iterations a PKCS#12 file may ask for. Every step (the MAC, each encrypted SafeContents, each shrouded
 * key) costs about a microsecond per iteration, the MAC's in JavaScript and the keys' inside OpenSSL, both on the
 * caller's thread without yielding: 1,000,000 iterations in each of three steps took 3.4 s and held the event loop
 * for 3.1 s of it, so a step of 2^31 would hold it for about 40 minutes. Exporters use 2,000 to 600,000 (OpenSSL
 * 2,048, Windows 2,000, Java 10,000).
 */
export const PKCS12_ITERATION_LIMITS = { perStep: 1_000_000n, perFile: 4_000_000n } as const;

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

/** The iteration count in an algorithm's parameters {salt, iterations, …}, as written (pkijs reads 2^24 and up as 0). */
function declaredIterations(params: unknown, what: string): bigint {
  const count = params instanceof asn1js.Sequence ? params.valueBlock.value[1] : undefined;
  if (!(count instanceof asn1js.Integer)) throw failed(`${what}: no iteration count`);
  return count.toBigInt();
}

/** The iterations a password-based encryption scheme asks for; schemes without a count (scrypt …) are refused. */
export function iterationsOfPasswordScheme(algorithm: pkijs.AlgorithmIdentifier, what: string): bigint {
  if (SALT_AND_ITERATIONS_SCHEMES.test(algorithm.algorithmId)) {
    return declaredIterations(algorithm.algorithmParams, what);
  }
  if (algorithm.algorithmId !== PBES2) throw failed(`${what}: encryption ${algorithm.algorithmId} is not supported`);
  let kdf: pkijs.AlgorithmIdentifier;
  try {
    // From a copy: pkijs takes apart the ASN.1 objects it reads, and these are read again when the step runs.
    kdf = pkijs.PBES2Params.fromBER((algorithm.algorithmParams as asn1js.BaseBlock).toBER(false)).keyDerivationFunc;
  } catch (cause) {
    throw failed(`${what}: damaged PBES2 parameters`, cause);
  }
  if (kdf.algorithmId !== PBKDF2) {
    throw failed(`${what}: key derivation ${kdf.algorithmId} is not supported (PBKDF2 only)`);
  }
  return declaredIterations(kdf.algorithmParams, what);
}

/** Counts each password step against PKCS12_ITERATION_LIMITS before it runs. */
function iterationBudget(): (iterations: bigint, what: string) => void {
  let spent = 0n;
  return (iterations, what) => {
    const { perStep, perFile } = PKCS12_ITERATION_LIMITS;
    if (iterations > perStep) {
      throw failed(`${what} asks for ${iterations} password iterations (at most ${perStep}); export it with fewer`);
    }
    spent += iterations;
    if (spent > perFile) {
      throw failed(`the file asks for more than ${perFile} password iterations in all; export it with fewer`);
    }
  };
}

/** MacData.iterations as written (PFX ::= SEQUENCE { version, authSafe, macData { mac, macSalt, iterations DEFAULT 1 } }). */
function macIterations(bytes: Uint8Array): bigint {
  const pfx = asn1js.fromBER(bytes).result;
  const macData = pfx instanceof asn1js.Sequence ? pfx.valueBlock.value[2] : undefined;
  if (macData === undefined) return 0n;
  const count = macData instanceof asn1js.Sequence ? macData.valueBlock.value[2] : undefined;
  if (count === undefined) return 1n;
  if (!(count instanceof asn1js.Integer)) throw failed('the MAC has a damaged iteration count');
  return count.toBigInt();
}

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
  const spend = iterationBudget();
  spend(macIterations(bytes), 'the MAC');
  const privateKeys: KeyObject[] = [];
  const certificates: Buffer[] = [];
  try {
    await pfx.parseInternalValues({ password: passwordBuffer, checkIntegrity: true });
    const authenticatedSafe = pfx.parsedValue?.authenticatedSafe;
    if (!authenticatedSafe) throw failed('PKCS#12 without content');
    for (const contentInfo of authenticatedSafe.safeContents) {
      if (contentInfo.contentType !== ENCRYPTED_DATA) continue;
      const encrypted = pkijs.EncryptedData.fromBER((contentInfo.content as asn1js.BaseBlock).toBER(false));
      spend(
        iterationsOfPasswordScheme(encrypted.encryptedContentInfo.contentEncryptionAlgorithm, 'an encrypted bag set'),
        'an encrypted bag set',
      );
    }
    await authenticatedSafe.parseInternalValues({
      safeContents: authenticatedSafe.safeContents.map(() => ({ password: passwordBuffer })),
    });
    for (const { value } of authenticatedSafe.parsedValue?.safeContents ?? []) {
      for (const bag of value.safeBags) {
        if (bag.bagId === KEY_BAG) {
          const der = Buffer.from((bag.bagValue as pkijs.PrivateKeyInfo).toSchema().toBER(false));
          privateKeys.push(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
        } else if (bag.bagId === PKCS8_SHROUDED_KEY_BAG) {
          const shrouded = bag.bagValue as pkijs.PKCS8ShroudedKeyBag;
          spend(iterationsOfPasswordScheme(shrouded.encryptionAlgorithm, 'a shrouded key'), 'a shrouded key');
          const der = Buffer.from(shrouded.toSchema().toBER(false));
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
  return { keys: pairedKeys(privateKeys, certificates), certificates };
}

/**
 * Each private key with the certificate of its public key. A certificate pkijs read but Node cannot (its public key
 * of an algorithm Node does not know, its encoding), or a key Node cannot export, makes the file unreadable as any
 * other damage does (SMIME_PKCS12_FAILED): thrown from here, it was an error without a code, a 500 for the upload.
 */
function pairedKeys(privateKeys: readonly KeyObject[], certificates: readonly Buffer[]): Pkcs12Contents['keys'] {
  try {
    const withSpki = certificates.map((der) => ({ der, spki: spkiOf(new X509Certificate(der).publicKey) }));
    return privateKeys.flatMap((privateKey) => {
      const spki = spkiOf(privateKey);
      const match = withSpki.find((c) => c.spki.equals(spki));
      return match ? [{ certificate: match.der, privateKey }] : [];
    });
  } catch (cause) {
    throw failed('PKCS#12 holds a certificate or key that cannot be read', cause);
  }
}
