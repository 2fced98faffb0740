// RFC 5321 §4.5.3.1.3: a path of at most 256 octets with its angle brackets, so an address of at most 254. isPlainAddress,
// the rule of every door (ingest's RCPT and MAIL FROM, the portal's forms, deliver), holds addresses to it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressTooLong, isInternetAddress, isPlainAddress, MAX_ADDRESS_OCTETS } from '../src/index.ts';

/** A domain of the internet `length` characters long: labels of 63 letters and a short top label. */
function domainOf(length: number): string {
  const labels: string[] = [];
  let left = length - '.example'.length;
  while (left > 0) {
    const label = Math.min(63, left);
    labels.push('d'.repeat(label));
    left -= label + 1;
  }
  const domain = `${labels.join('.')}.example`;
  assert.equal(domain.length, length);
  return domain;
}

/** A label of 55 letters and a `ü`: 57 octets as written, 63 as an A-label. */
const WIDE_LABEL = `${'a'.repeat(55)}ü`;

describe('the length of an address (RFC 5321 §4.5.3.1.3)', () => {
  const within = [
    ['an address of 254 octets', `${'l'.repeat(64)}@${domainOf(254 - 65)}`],
    ['an address of 254 octets with a short local part', `l@${domainOf(252)}`],
    // RFC 5321 §4.5.3.1.1's 64 octets are not enforced: a forwarder's SRS sender goes beyond them.
    [
      'a local part of 80 octets (SRS)',
      `SRS0=HHH=TT=${'verwaltung'.repeat(5)}.example=${'b'.repeat(9)}@forward.example`,
    ],
    ['a local part of 32 two-octet letters', `${'ü'.repeat(32)}@firma.example`],
  ] as const;
  const beyond = [
    ['an address of 255 octets', `${'l'.repeat(64)}@${domainOf(255 - 65)}`],
    ['an address of 255 octets with a short local part', `l@${domainOf(253)}`],
    ['a recipient of 10,000 characters', `${'l'.repeat(9_986)}@firma.example`],
    ['200 characters of 400 octets', `${'ü'.repeat(186)}@firma.example`],
    // 246 octets as written, 264 with the domain's A-labels (the spelling the gateway keeps and sends).
    [
      'an address longer than 254 octets with its A-labels',
      `${'l'.repeat(64)}@${WIDE_LABEL}.${WIDE_LABEL}.${WIDE_LABEL}.example`,
    ],
  ] as const;
  for (const [what, address] of within) {
    it(`takes ${what}`, () => {
      assert.equal(addressTooLong(address), false);
      assert.equal(isPlainAddress(address), true);
      assert.equal(isInternetAddress(address), true);
    });
  }
  for (const [what, address] of beyond) {
    it(`refuses ${what}`, () => {
      assert.equal(addressTooLong(address), true);
      assert.equal(isPlainAddress(address), false);
      assert.equal(isInternetAddress(address), false);
    });
  }
  it('counts octets: 254 at most', () => {
    assert.equal(MAX_ADDRESS_OCTETS, 254);
  });
});
