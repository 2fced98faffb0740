// The key directory (migrations 008 and 009): written by the admin API, read by the encrypt stage. One module per
// record owns its table's SQL. Private keys are never selected in clear (agency keys are sealed).
export * from './agencies.ts';
export * from './agency-keys.ts';
export * from './agency-registrations.ts';
export * from './certificate-acceptance.ts';
export * from './certificates.ts';
export * from './changes.ts';
export * from './pgp-keys.ts';
export * from './portal-keys.ts';
export * from './trust-anchors.ts';
