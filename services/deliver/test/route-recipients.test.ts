import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { groupByDestination, type RoutingTable, routeRecipient } from '../src/route-recipients.ts';

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
