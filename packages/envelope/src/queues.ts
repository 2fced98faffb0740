import type { Stage } from './envelope.ts';

/** One durable direct exchange carries every envelope; the routing key is the target queue's name. */
export const EXCHANGE = 'smgw';

/** The work queue of a stage (a quorum queue). */
export function workQueue(stage: Stage): string {
  return `smgw.${stage}`;
}

/** The delay queue that returns an envelope to its stage after `delayMs` (TTL + dead-letter back). */
export function retryQueue(stage: Stage, delayMs: number): string {
  return `smgw.${stage}.retry.${formatDelay(delayMs)}`;
}

/** Where envelopes go that a stage gave up on; an operator looks at them (and may move them back). */
export function parkedQueue(stage: Stage): string {
  return `smgw.${stage}.parked`;
}

/** 90000 → "90s", 300000 → "5m", 7200000 → "2h", 172800000 → "2d"; odd values stay in ms. */
export function formatDelay(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'm'],
    [1000, 's'],
  ];
  for (const [size, unit] of units) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** "5m" → 300000; accepts ms, s, m, h, d. Returns undefined for anything else. */
export function parseDelay(text: string): number | undefined {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) return undefined;
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * factor;
}

/** AMQP header names that travel with every envelope. */
export const HEADERS = {
  traceparent: 'traceparent',
  parkReason: 'x-smgw-park-reason',
  parkCode: 'x-smgw-park-code',
} as const;
