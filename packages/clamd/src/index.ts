// @smgw/clamd: a strict clamd client (INSTREAM, PING, VERSION) and a pool of clamd sessions for many scans.
// Only "stream: OK" is clean; every other answer, and every failure to get one, is a ClamdError with a stable code.
export * from './client.ts';
export * from './errors.ts';
export * from './pool.ts';
export * from './reply.ts';
export * from './watch.ts';
export * from './zip-hint.ts';
