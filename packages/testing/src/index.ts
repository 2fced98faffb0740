// Test helpers: each test file gets its own PostgreSQL schema, RabbitMQ vhost and Redis key prefix, so test files
// run in parallel against the real services; or PostgreSQL, RabbitMQ, Redis and clamd of a run's own (startPrivateServers)
// for runs that restart them; the gateway's services as real processes; an SMTP sink that records
// what it receives; a stub DNS server and a DKIM key; readiness waits; envelopes and ingest's replies for tests.

export * from './database-sessions.ts';
export * from './dkim-test-key.ts';
export * from './eicar.ts';
export * from './envelope-fixture.ts';
export * from './gateway-processes.ts';
export * from './isolation.ts';
export * from './pg-dump.ts';
export * from './private-servers.ts';
export * from './queued-reply.ts';
export * from './signed-data.ts';
export * from './smtp-sink.ts';
export * from './stub-dns.ts';
export * from './test-gateway.ts';
export * from './wait.ts';
