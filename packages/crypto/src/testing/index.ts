// Test tools that need this package's CMS knowledge, and a test PKI made by openssl, for the tests of crypto and
// of the services using it.
// Exported as `@smgw/crypto/testing`, apart from the gateway's API: nothing in a service's src imports it.
export * from './openssl-pki.ts';
export * from './pgp-tiny-partials.ts';
export * from './smime-pkijs-signer.ts';

/** A decryption worker that dies on a message holding the word CRASH (startDecryptionWorkers' workerUrl). */
export const CRASHING_DECRYPTION_WORKER = new URL('./crashing-decryption-worker.ts', import.meta.url);
