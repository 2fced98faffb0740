// The portal's tables (packages/db/migrations/012): mailboxes, their messages (encrypted under each mailbox's own
// data key), activation tokens and the mailbox stage's arrivals. One place for their SQL: the mailbox service
// stores and notifies, the portal pages read, the admin API and the reaper (later) list and delete. Every function
// takes a pool or a client, so callers run it inside their own transaction with their trace rows.
export * from './activation-resend.ts';
export * from './activation-tokens.ts';
export * from './arrivals.ts';
export * from './audit.ts';
export * from './errors.ts';
export * from './inactivity.ts';
export * from './mailbox-key-store.ts';
export * from './mailbox-messages.ts';
export * from './mailbox-overview.ts';
export * from './mailboxes.ts';
export * from './message-cipher.ts';
