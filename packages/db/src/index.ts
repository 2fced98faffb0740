// PostgreSQL access: one pool per process, and migrations that are safe to run from several replicas at once.

export * from './change-listener.ts';
export * from './group-commit.ts';
export * from './migrate.ts';
export * from './pool.ts';
export * from './service-roles.ts';
