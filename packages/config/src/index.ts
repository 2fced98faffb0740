// Typed, validated settings from the environment. A malformed setting stops the start with one line that names the
// variable and says what is wrong (SPEC.md "Settings"). Each service declares the settings it reads (a spec) and
// loads them once in main; `--print-config` shows the resolved values with secrets hidden.

export * from './dkim-signing.ts';
export * from './load.ts';
export * from './parsers.ts';
export * from './plain-address.ts';
export * from './settings.ts';
