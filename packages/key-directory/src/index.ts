// The key directory (migration 008): written by the admin API, read by the encrypt stage. One place for its SQL.
export * from './encrypt-reads.ts';
export * from './store.ts';
