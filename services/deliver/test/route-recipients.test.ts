import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPlainAddress } from '@smgw/config';
import addressparser from 'nodemailer/lib/addressparser';
import { groupByDestination, type RoutingTable, routeRecipient } from '../src/route-recipients.ts';
import { NOT_PLAIN_AGENCY_LOOKALIKES } from './fixtures.ts';

const relay = [
  { host: '10.1.0.5', port: 25 },
  { host: '10.1.0.6', port: 2526 },
];
const withSmarthost: RoutingTable = {
  internalDomains: ['behoerde.example', '*.sachsen.example'],
  internalRelay: relay,
  smarthost: { host: 'smarthost.example', port: 587 },
};
const withoutSmarthost: RoutingTable = { ...withSmarthost, smarthost: undefined };

describe('routeRecipient', () => {
  const cases: { recipient: string; table: RoutingTable; kind: string; key: string }[] = [
    { recipient: 'a@behoerde.example', table: withSmarthost, kind: 'relay', key: 'relay:10.1.0.5:25,10.1.0.6:2526' },
    { recipient: 'A@BEHOERDE.EXAMPLE', table: withSmarthost, kind: 'relay', key: 'relay:10.1.0.5:25,10.1.0.6:2526' },
    { recipient: 'b@amt.sachsen.example', table: withSmarthost, kind: 'relay', key: 'relay:10.1.0.5:25,10.1.0.6:2526' },
    { recipient: 'c@sachsen.example', table: withSmarthost, kind: 'smarthost', key: 'smarthost:smarthost.example:587' },
    { recipient: 'd@firma.example', table: withSmarthost, kind: 'smarthost', key: 'smarthost:smarthost.example:587' },
    { recipient: 'd@Firma.Example', table: withoutSmarthost, kind: 'mx', key: 'mx:firma.example' },
    { recipient: 'e@bücher.example', table: withoutSmarthost, kind: 'mx', key: 'mx:xn--bcher-kva.example' },
  ];
  for (const c of cases) {
    it(`sends ${c.recipient} to ${c.key}`, () => {
      const destination = routeRecipient(c.recipient, c.table);
      assert.equal(destination.kind, c.kind);
      assert.equal(destination.key, c.key);
    });
  }

  it('lists the relay hosts in the configured order', () => {
    const destination = routeRecipient('a@behoerde.example', withSmarthost);
    assert.equal(destination.kind, 'relay');
    assert.deepEqual(destination.kind === 'relay' && destination.hosts, relay);
  });
});

describe('groupByDestination', () => {
  it('puts recipients of one destination into one group, in order of first appearance', () => {
    const groups = groupByDestination(
      ['x@firma.example', 'a@behoerde.example', 'y@other.example', 'b@behoerde.example'],
      withSmarthost,
    );
    assert.deepEqual(
      groups.map((g) => [g.destination.key, g.recipients]),
      [
        ['smarthost:smarthost.example:587', ['x@firma.example', 'y@other.example']],
        ['relay:10.1.0.5:25,10.1.0.6:2526', ['a@behoerde.example', 'b@behoerde.example']],
      ],
    );
  });

  it('groups by MX domain when there is no smarthost', () => {
    const groups = groupByDestination(['x@firma.example', 'y@other.example', 'z@FIRMA.example'], withoutSmarthost);
    assert.deepEqual(
      groups.map((g) => [g.destination.key, g.recipients]),
      [
        ['mx:firma.example', ['x@firma.example', 'z@FIRMA.example']],
        ['mx:other.example', ['y@other.example']],
      ],
    );
  });
});

describe('isPlainAddress', () => {
  const plain = [
    'a@behoerde.example',
    'Vor.Name+tag@Amt.Sachsen.Example',
    "o'brien@firma.example",
    'x_y-z=1@firma.example.',
    'e@bücher.example',
    'jörg@bücher.example',
    // Legacy local parts ingest takes (not strict dot-atoms): they must not bounce after a 250.
    '.x@behoerde.example',
    'x.@behoerde.example',
    'x..y@behoerde.example',
  ];
  const notPlain = [
    ...NOT_PLAIN_AGENCY_LOOKALIKES,
    'u%evil.example@behoerde.example',
    'evil.example!u@behoerde.example',
    '"x@evil.example"@behoerde.example',
    '"x"@behoerde.example',
    'x(comment)@behoerde.example',
    'x@behoerde.example(comment)',
    'x@[192.0.2.1]',
    'x@evil.example@behoerde.example',
    '@evil.example:x@behoerde.example',
    'group: x@evil.example;@behoerde.example',
    'x\\y@behoerde.example',
    ' x@behoerde.example',
    'x@behoerde.example\r',
    'x\u0000@behoerde.example',
    'x\u00a0y@behoerde.example',
    'x@',
    '@behoerde.example',
    'x',
    '',
    'x@behoerde..example',
  ];
  for (const address of plain) {
    it(`takes ${JSON.stringify(address)} as one plain address, and so does nodemailer's addressparser`, () => {
      assert.equal(isPlainAddress(address), true);
      assert.deepEqual(
        addressparser(address).map((a) => a.address),
        [address],
      );
    });
  }
  for (const address of notPlain) {
    it(`refuses ${JSON.stringify(address)}`, () => {
      assert.equal(isPlainAddress(address), false);
    });
  }
});

describe('routing what is not one plain address', () => {
  for (const recipient of NOT_PLAIN_AGENCY_LOOKALIKES) {
    it(`sends ${JSON.stringify(recipient)} nowhere, not to the agencies' relay by the text after its last @`, () => {
      for (const table of [withSmarthost, withoutSmarthost]) {
        const route = routeRecipient(recipient, table);
        assert.equal(route.kind, 'refused');
      }
    });
  }

  it('puts refused recipients into a group of their own, apart from the plain ones of the same domain', () => {
    const groups = groupByDestination(['a@behoerde.example', 'x@evil.example;y@behoerde.example'], withSmarthost);
    assert.deepEqual(
      groups.map((g) => [g.destination.kind, g.recipients]),
      [
        ['relay', ['a@behoerde.example']],
        ['refused', ['x@evil.example;y@behoerde.example']],
      ],
    );
  });
});

describe('routing an address outside the agencies that is no name of the internet', () => {
  for (const recipient of ['x@192.0.2.1', 'x@8.8.8.8', 'x@0x7f.1', 'x@localhost', 'x@mailhost', 'x@printer.local']) {
    it(`sends ${recipient} nowhere, neither to its "MX" nor to the smarthost`, () => {
      for (const table of [withSmarthost, withoutSmarthost]) {
        assert.equal(routeRecipient(recipient, table).key, 'refused:not-internet-domain');
      }
    });
  }

  it("keeps an agency domain as configured, even a bare host name: the agencies' relay", () => {
    const table: RoutingTable = { ...withoutSmarthost, internalDomains: ['intranet'] };
    assert.equal(routeRecipient('a@intranet', table).kind, 'relay');
  });
});
