export * from './private-servers.ts';
