// Test tools that need this package's CMS knowledge, for the tests of crypto and of the services using it.
// Exported as `@smgw/crypto/testing`, apart from the gateway's API: nothing in a service's src imports it.
export * from './smime-pkijs-signer.ts';
