// A DKIM key for tests: the TXT record to publish in the stub DNS (`<selector>._domainkey.<domain>`) and a signer
// that puts DKIM-Signature fields in front of a message (mailauth's dkimSign, relaxed/relaxed, rsa-sha256).
import { generateKeyPairSync } from 'node:crypto';
import { dkimSign } from 'mailauth';

export interface DkimTestKey {
  /** The key record, `v=DKIM1; k=rsa; p=…`. */
  record: string;
  /** The message with one signature per selector by `domain` in front. */
  sign(message: string, domain: string, selectors?: string[]): Promise<string>;
}

export function createDkimTestKey(): DkimTestKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return {
    record: `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`,
    async sign(message, domain, selectors = ['sel']) {
      const signing = {
        canonicalization: 'relaxed/relaxed',
        signatureData: selectors.map((selector) => ({ signingDomain: domain, selector, privateKey: pem })),
      };
      // mailauth's typings name top-level keys, its signer reads `signatureData` (lib/dkim/dkim-signer.js).
      const signed = await dkimSign(message, signing as unknown as Parameters<typeof dkimSign>[1]);
      if (signed.errors?.length) throw new Error(`dkimSign: ${JSON.stringify(signed.errors)}`);
      return signed.signatures + message;
    },
  };
}
