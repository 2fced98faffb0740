import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isInternetAddress, isPlainAddress } from '../src/index.ts';

describe('isInternetAddress: an address the gateway may send to outside the closed network', () => {
  const internet = [
    'buerger@firma.example',
    'Vor.Name+tag@Amt.Sachsen.Example',
    'x@mail.bund.de',
    'x@firma.example.',
    'jörg@bücher.example',
    'x@xn--p1ai.xn--p1ai',
    'x@1und1.de',
    'x@123.example',
    'x@chaos.test',
    'x@a.io',
  ];
  // Each a plain address (ingest, deliver and the portal took them before), none a name of the internet.
  const notInternet = [
    ['an IPv4 address as domain', 'x@192.0.2.1'],
    ['an IPv4 address with a trailing dot', 'x@192.0.2.1.'],
    ['a short IPv4 form (127.0.0.1)', 'x@127.1'],
    ['a hexadecimal IPv4 form', 'x@0x7f.1'],
    ['an octal IPv4 form (192.168.0.1)', 'x@0300.0250.0.1'],
    ['full-width digits (192.0.2.1)', 'x@１９２.０.２.１'],
    ['a bare host', 'x@localhost'],
    ['a bare host in capitals', 'x@LOCALHOST.'],
    ['a bare host name', 'x@mailhost'],
    ['a loopback name', 'x@foo.localhost'],
    ['a link-local (mDNS) name', 'x@printer.local'],
    ['a private-use name', 'x@db.corp.internal'],
    ['a name that must not resolve', 'x@nowhere.invalid'],
    ['a reverse-lookup name', 'x@1.2.0.192.in-addr.arpa'],
    ['a home network name', 'x@router.home.arpa'],
    ['an onion name', 'x@abc.onion'],
  ] as const;
  for (const address of internet) {
    it(`takes ${JSON.stringify(address)}`, () => {
      assert.equal(isInternetAddress(address), true);
    });
  }
  for (const [what, address] of notInternet) {
    it(`refuses ${what} (${JSON.stringify(address)}), which isPlainAddress takes`, () => {
      assert.equal(isPlainAddress(address), true);
      assert.equal(isInternetAddress(address), false);
    });
  }
  // A numeric top label that is no IPv4 address is no name to the WHATWG host parser either (normalizeDomain).
  for (const address of [
    'x@[192.0.2.1]',
    'x@[IPv6:::1]',
    'x@host.123',
    'x@1.2.3.4.5',
    'u%evil.example@firma.example',
    'x@',
    'x@a..example',
  ]) {
    it(`refuses ${JSON.stringify(address)}, which is no plain address`, () => {
      assert.equal(isInternetAddress(address), false);
    });
  }
});
