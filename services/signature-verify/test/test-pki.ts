// The test PKI of @smgw/crypto/testing (a root CA, signers issued by it, revocation and CRLs by the real openssl),
// with what these tests add: `openssl cms -sign` as the independent signer of S/MIME mail and `openssl cms -verify`
// as the independent judge of what the gateway passes on.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type TestPki as CryptoTestPki, createTestPki, type TestCa } from '@smgw/crypto/testing';

export interface Signer {
  name: string;
  email: string;
  certificatePath: string;
  keyPath: string;
  der: Buffer;
}

export class TestPki {
  readonly dir: string;
  readonly ca: { certificatePath: string; keyPath: string; der: Buffer };
  readonly #pki: CryptoTestPki;
  readonly #ca: TestCa;
  readonly #issued = new Map<Signer, Awaited<ReturnType<CryptoTestPki['leaf']>>>();

  private constructor(pki: CryptoTestPki, ca: TestCa) {
    this.#pki = pki;
    this.#ca = ca;
    this.dir = pki.dir;
    this.ca = { certificatePath: ca.certPath, keyPath: ca.keyPath, der: ca.der };
  }

  static async create(name: string): Promise<TestPki> {
    const pki = await createTestPki('smgw-verify-service-');
    return new TestPki(pki, await pki.ca(name));
  }

  remove(): Promise<void> {
    return this.#pki.remove();
  }

  /** A signing certificate for `email` (its subject CN), with the CRL distribution point `crlUrl`. */
  async signer(name: string, email: string, crlUrl: string): Promise<Signer> {
    const leaf = await this.#pki.leaf(this.#ca, email, {
      crlUrl,
      keyUsage: 'digitalSignature,nonRepudiation',
      days: 365,
    });
    const signer = { name, email, certificatePath: leaf.certPath, keyPath: leaf.keyPath, der: leaf.der };
    this.#issued.set(signer, leaf);
    return signer;
  }

  async revoke(signer: Signer): Promise<void> {
    const leaf = this.#issued.get(signer);
    if (!leaf) throw new Error(`${signer.name} was not issued by this PKI`);
    await this.#pki.revoke(this.#ca, leaf);
  }

  /** The CA's current CRL, DER. */
  crl(): Promise<Buffer> {
    return this.#pki.crl(this.#ca);
  }

  /**
   * An S/MIME message as a mail client sends it: `openssl cms -sign` (detached, multipart/signed) over `entity`
   * exactly as given, with the header fields in front.
   */
  async signedMail(header: readonly string[], entity: Buffer, signer: Signer): Promise<Buffer> {
    const signed = await this.#sign(entity, signer, ['-crlfeol']);
    // openssl writes the signature's base64 with bare LF even with -crlfeol; a mail client sends CRLF lines (the
    // signed entity is CRLF already, so its bytes do not change).
    const lines = Buffer.from(signed.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
    return Buffer.concat([Buffer.from(header.map((h) => `${h}\r\n`).join(''), 'utf8'), lines]);
  }

  /** The DER ContentInfo of an opaque signature over `entity` (`openssl cms -sign -nodetach`): what smime.p7m holds. */
  opaqueSignedData(entity: Buffer, signer: Signer): Promise<Buffer> {
    return this.#sign(entity, signer, ['-nodetach', '-outform', 'DER']);
  }

  /** `openssl cms -sign -binary` over `entity` exactly as given, with the options `extra`. */
  async #sign(entity: Buffer, signer: Signer, extra: readonly string[]): Promise<Buffer> {
    const input = await this.file(`entity-${Math.random().toString(36).slice(2)}.eml`, entity);
    return this.#pki.openssl([
      'cms',
      '-sign',
      '-binary',
      ...extra,
      '-in',
      input,
      '-signer',
      signer.certificatePath,
      '-inkey',
      signer.keyPath,
    ]);
  }

  /** `openssl cms -verify` of a whole message against the CA: true when openssl says the signature holds. */
  async opensslVerifies(message: Buffer): Promise<boolean> {
    const input = await this.file(`verify-${Math.random().toString(36).slice(2)}.eml`, message);
    try {
      await this.#pki.openssl([
        'cms',
        '-verify',
        '-in',
        input,
        '-CAfile',
        this.ca.certificatePath,
        '-out',
        '/dev/null',
      ]);
      return true;
    } catch {
      return false;
    }
  }

  async file(name: string, content: Uint8Array | string): Promise<string> {
    const path = join(this.dir, name);
    await writeFile(path, content);
    return path;
  }
}
