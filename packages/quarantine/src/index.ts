// The quarantine table (packages/db/migrations/005–007): messages the scan stage stopped. One place for its SQL:
// scan records entries, the admin API lists and releases them, the lifecycle reaper purges expired ones.
// Every function takes a pool or a client, so callers run it inside their own transaction with their trace rows.
export * from './purge-expired.ts';
export * from './read-entries.ts';
export * from './record-entry.ts';
export * from './release-entry.ts';
