// ETSI TS 119 612 trusted lists with their XML signatures checked (one list, or the EU list of lists and the
// national lists it names), qualified status at signing time, and the ETSI TS 119 102-2 validation report.
export * from './certificate-facts.ts';
export * from './config.ts';
export * from './errors.ts';
export * from './list-of-lists.ts';
export * from './list-signature.ts';
export * from './load-trusted-list.ts';
export * from './model.ts';
export * from './qualified-status.ts';
export * from './read-trusted-list.ts';
export * from './validation-report.ts';
export * from './xml-parse.ts';
