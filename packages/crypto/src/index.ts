// Cryptography of the gateway: certificate path validation (pkix), S/MIME CMS (smime), OpenPGP (openpgp).

export { checkWholeMessageEncrypted, type WholeMessageCheck } from './encrypted-check/whole-message-encrypted.ts';
export * from './openpgp/index.ts';
export * from './pkix/index.ts';
export * from './smime/index.ts';
