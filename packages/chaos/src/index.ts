// The chaos suite (issue 12): `runChaos` is one run; its parts are exported for the crash test and the unit tests.
export * from './checker.ts';
export * from './generator.ts';
export * from './nemeses.ts';
export * from './observe.ts';
export * from './random.ts';
export * from './run-chaos.ts';
export * from './supervisor.ts';
export * from './workload.ts';
