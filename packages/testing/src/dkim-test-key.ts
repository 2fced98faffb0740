// A DKIM key for tests: the TXT record to publish in the stub DNS (`<selector>._domainkey.<domain>`) and a signer
// that puts DKIM-Signature fields in front of a message (mailauth's dkimSign, relaxed/relaxed, rsa-sha256 or
// ed25519-sha256 by the key's type).
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { authenticate, dkimSign } from 'mailauth';
import type { StubDns } from './stub-dns.ts';

export interface DkimTestKey {
  /** The key record, `v=DKIM1; k=rsa; p=…` (or k=ed25519). */
  record: string;
  /** The private key as PEM (PKCS#8), for a service that signs with it (SMGW_DKIM_KEY_FILE). */
  privateKeyPem: string;
  /**
   * The message with one signature per selector by `domain` in front; `bodyLength`: the signatures cover only that
   * many bytes of the body (l=).
   */
  sign(message: string, domain: string, selectors?: string[], options?: { bodyLength?: number }): Promise<string>;
}

export function createDkimTestKey(type: 'rsa' | 'ed25519' = 'rsa'): DkimTestKey {
  const { privateKey, publicKey } =
    type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return {
    record: `v=DKIM1; k=${type}; p=${publicKeyData(type, publicKey)}`,
    privateKeyPem: pem,
    async sign(message, domain, selectors = ['sel'], options = {}) {
      const limit = options.bodyLength === undefined ? {} : { maxBodyLength: options.bodyLength };
      const signing = {
        canonicalization: 'relaxed/relaxed',
        signatureData: selectors.map((selector) => ({ signingDomain: domain, selector, privateKey: pem, ...limit })),
      };
      // mailauth's typings name top-level keys, its signer reads `signatureData` (lib/dkim/dkim-signer.js).
      const signed = await dkimSign(message, signing as unknown as Parameters<typeof dkimSign>[1]);
      if (signed.errors?.length) throw new Error(`dkimSign: ${JSON.stringify(signed.errors)}`);
      return signed.signatures + message;
    },
  };
}

/** p=: an RSA key as SubjectPublicKeyInfo (RFC 6376 §3.6.1), an Ed25519 key as its bare 32 bytes (RFC 8463 §4). */
function publicKeyData(type: 'rsa' | 'ed25519', publicKey: KeyObject): string {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return (type === 'rsa' ? spki : spki.subarray(spki.length - 32)).toString('base64');
}

export type DkimResult = Awaited<ReturnType<typeof authenticate>>['dkim']['results'][number];

/** What mailauth's authenticate() says of each DKIM-Signature of `message`, keys looked up in the stub DNS. */
export async function verifyDkim(message: Buffer, dns: StubDns): Promise<DkimResult[]> {
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([dns.address]);
  const result = await authenticate(message, {
    ip: '127.0.0.1',
    helo: 'mail.test',
    sender: '',
    mta: 'verifier.test',
    resolver: (name: string, type: string) => resolver.resolve(name, type as 'TXT') as Promise<never>,
  });
  return result.dkim.results;
}
