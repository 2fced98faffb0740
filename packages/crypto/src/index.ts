// Cryptography of the gateway: certificate path validation (pkix), S/MIME CMS (smime), OpenPGP (openpgp).

export * from './openpgp/index.ts';
export * from './pkix/index.ts';
export * from './smime/index.ts';
