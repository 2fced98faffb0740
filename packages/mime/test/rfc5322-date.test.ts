import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rfc5322Date } from '../src/index.ts';

describe('RFC 5322 dates', () => {
  const cases: Array<[string, string]> = [
    ['2024-02-29T23:59:59Z', 'Thu, 29 Feb 2024 23:59:59 +0000'],
    ['2027-01-02T03:04:05Z', 'Sat, 02 Jan 2027 03:04:05 +0000'],
    ['2025-01-07T09:30:00+01:00', 'Tue, 07 Jan 2025 08:30:00 +0000'],
    ['2026-12-31T23:00:00-02:00', 'Fri, 01 Jan 2027 01:00:00 +0000'],
  ];
  for (const [iso, expected] of cases) {
    it(`writes ${iso} in UTC with a numeric zone and two-digit day: ${expected}`, () => {
      assert.equal(rfc5322Date(new Date(iso)), expected);
    });
  }

  it('writes what Date#toUTCString writes, with +0000 for GMT', () => {
    for (let t = Date.UTC(2020, 0, 1); t < Date.UTC(2030, 0, 1); t += 37 * 3600 * 1000 + 61_000) {
      const date = new Date(t);
      assert.equal(rfc5322Date(date), date.toUTCString().replace(/GMT$/, '+0000'));
    }
  });
});
