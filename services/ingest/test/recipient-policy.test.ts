import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientKey, networkKey } from '../src/rate-limits.ts';
import { decideRecipient, groupByDirection, routeOf } from '../src/recipient-policy.ts';
import { decideInboundSender, decideSubmissionSender, mayAppearAsInboundAuthor } from '../src/sender-policy.ts';

const domains = ['behoerde.example', '*.sachsen.example'];

describe('recipient routes', () => {
  const table: [string, string][] = [
    ['a@behoerde.example', 'agency'],
    ['A.B@BEHOERDE.EXAMPLE', 'agency'],
    ['a@amt.sachsen.example', 'agency'],
    ['a@sachsen.example', 'outside'],
    ['a@behoerde.example.evil.example', 'outside'],
    ['a@evilbehoerde.example', 'outside'],
    ['a@gmail.example', 'outside'],
    ['user@behoerde.example@evil.example', 'invalid'],
    ['user@evil.example@behoerde.example', 'invalid'],
    ['"user@behoerde.example"@evil.example', 'invalid'],
    ['@a:u@evil.example', 'invalid'],
    ['@a:u@behoerde.example', 'invalid'],
    ['u%evil.example@behoerde.example', 'invalid'],
    ['u%behoerde.example@evil.example', 'invalid'],
    ['evil.example!u@behoerde.example', 'invalid'],
    ['"quoted"@behoerde.example', 'invalid'],
    ['a\\@b@behoerde.example', 'invalid'],
    ['a@BEHOERDE.example.', 'agency'],
    ['a@behoerde.example..', 'invalid'],
    ['a@amt.SACHSEN.example.', 'agency'],
    ['a@bücher.sachsen.example', 'agency'],
    ['a@xn--bcher-kva.sachsen.example', 'agency'],
    ['a@behörde.example', 'outside'],
    ['postmaster', 'invalid'],
    ['@behoerde.example', 'invalid'],
    ['u@', 'invalid'],
    // No 250 for what deliver would refuse to send (the one rule of @smgw/config isPlainAddress): an address literal,
    // a comment, a list separator or a bracket in the local part.
    ['u@[192.0.2.1]', 'invalid'],
    ['u(comment)@behoerde.example', 'invalid'],
    ['u;v@gmail.example', 'invalid'],
    ['[u]@gmail.example', 'invalid'],
    ["o'brien+tag@gmail.example", 'outside'],
    ['x..y@behoerde.example', 'agency'],
    // Nor for a plain address outside the agencies that is no name of the internet (@smgw/config isInternetAddress):
    // deliver would mail such a host, or a DSN would go there.
    ['u@192.0.2.1', 'invalid'],
    ['u@127.1', 'invalid'],
    ['u@localhost', 'invalid'],
    ['u@mailhost.', 'invalid'],
    ['u@printer.local', 'invalid'],
    ['u@db.corp.internal', 'invalid'],
  ];
  for (const [address, route] of table) {
    it(`routes ${address} as ${route}`, () => {
      assert.equal(routeOf(address, domains), route);
    });
  }
  it('keeps an agency domain as configured, even a bare host name (the agencies decide their own names)', () => {
    assert.equal(routeOf('a@intranet', ['intranet']), 'agency');
    assert.equal(routeOf('a@intranet', domains), 'invalid');
  });
});

describe('the inbound (MX) listener', () => {
  it('accepts a recipient in an agency domain, direction inbound', () => {
    assert.deepEqual(decideRecipient('inbound', 'a@behoerde.example', domains), { accept: true, direction: 'inbound' });
  });

  it('denies relaying to a domain outside the agencies with RELAY_DENIED', () => {
    assert.deepEqual(decideRecipient('inbound', 'a@gmail.example', domains), { accept: false, code: 'RELAY_DENIED' });
  });

  const routeAttempts = [
    'user@behoerde.example@evil.example',
    '"user@behoerde.example"@evil.example',
    '@a:u@evil.example',
    'u%behoerde.example@evil.example',
    'u%evil.example@behoerde.example',
    'evil.example!u@behoerde.example',
    'postmaster',
  ];
  for (const address of ['a@192.0.2.1', 'a@localhost', 'a@[192.0.2.1]']) {
    it(`refuses ${address}, no domain of the internet, on either port with RECIPIENT_INVALID`, () => {
      assert.deepEqual(decideRecipient('inbound', address, domains), { accept: false, code: 'RECIPIENT_INVALID' });
      assert.deepEqual(decideRecipient('submission', address, domains), { accept: false, code: 'RECIPIENT_INVALID' });
    });
  }

  for (const address of routeAttempts) {
    it(`refuses ${address}, which a server after us might route, with RECIPIENT_INVALID`, () => {
      assert.deepEqual(decideRecipient('inbound', address, domains), { accept: false, code: 'RECIPIENT_INVALID' });
      assert.deepEqual(decideRecipient('submission', address, domains), { accept: false, code: 'RECIPIENT_INVALID' });
    });
  }
});

describe('the submission listener', () => {
  it('sends agency recipients internal and everyone else outbound', () => {
    assert.deepEqual(decideRecipient('submission', 'a@behoerde.example', domains), {
      accept: true,
      direction: 'internal',
    });
    assert.deepEqual(decideRecipient('submission', 'b@gmail.example', domains), {
      accept: true,
      direction: 'outbound',
    });
  });

  it('refuses addresses it cannot route with RECIPIENT_INVALID', () => {
    assert.deepEqual(decideRecipient('submission', 'a@b@c.example', domains), {
      accept: false,
      code: 'RECIPIENT_INVALID',
    });
  });

  it('refuses a recipient over 254 octets with RECIPIENT_TOO_LONG on either port, and takes one of 254', () => {
    for (const listener of ['inbound', 'submission'] as const) {
      for (const address of [`${'l'.repeat(238)}@behoerde.example`, `${'ü'.repeat(121)}@gmail.example`]) {
        assert.deepEqual(decideRecipient(listener, address, domains), { accept: false, code: 'RECIPIENT_TOO_LONG' });
      }
      assert.equal(decideRecipient(listener, `${'l'.repeat(237)}@behoerde.example`, domains).accept, true);
    }
  });

  it('groups mixed recipients into one internal and one outbound group', () => {
    assert.deepEqual(
      groupByDirection('submission', ['x@gmail.example', 'a@behoerde.example', 'y@web.example'], domains),
      [
        { direction: 'internal', recipients: ['a@behoerde.example'] },
        { direction: 'outbound', recipients: ['x@gmail.example', 'y@web.example'] },
      ],
    );
  });

  it('never groups a recipient the listener would have refused', () => {
    assert.throws(() => groupByDirection('inbound', ['a@gmail.example'], domains));
  });
});

describe('submission senders', () => {
  /** Granted the whole domain explicitly. */
  const account = { username: 'amt', senderAddresses: [], senderDomains: ['behoerde.example'] };
  /** Owns one address of that domain, and nothing else. */
  const anna = { username: 'anna', senderAddresses: ['anna@behoerde.example'], senderDomains: [] };
  const table: [string, Parameters<typeof decideSubmissionSender>[0], unknown][] = [
    [
      'a trusted client with an agency sender',
      { address: 'a@behoerde.example', trustedNetwork: true, account: undefined },
      { accept: true },
    ],
    [
      'an untrusted client without AUTH',
      { address: 'a@behoerde.example', trustedNetwork: false, account: undefined },
      { accept: false, code: 'AUTH_REQUIRED' },
    ],
    [
      'a trusted client with an outside sender',
      { address: 'a@gmail.example', trustedNetwork: true, account: undefined },
      { accept: false, code: 'SENDER_NOT_ALLOWED' },
    ],
    [
      'the null sender',
      { address: '', trustedNetwork: true, account: undefined },
      { accept: false, code: 'SENDER_NOT_ALLOWED' },
    ],
    [
      'an account using its own domain',
      { address: 'a@behoerde.example', trustedNetwork: false, account },
      { accept: true },
    ],
    [
      'an account using another agency domain',
      { address: 'a@amt.sachsen.example', trustedNetwork: false, account },
      { accept: false, code: 'SENDER_NOT_ALLOWED' },
    ],
    [
      'an account whose domains include one that is no agency domain',
      {
        address: 'a@gmail.example',
        trustedNetwork: false,
        account: { username: 'x', senderAddresses: ['x@gmail.example'], senderDomains: ['gmail.example'] },
      },
      { accept: false, code: 'SENDER_NOT_ALLOWED' },
    ],
    [
      'an account using the address it owns (case and trailing dot aside)',
      { address: 'Anna@BEHOERDE.example.', trustedNetwork: false, account: anna },
      { accept: true },
    ],
    [
      'an account using another address of its own domain (no domain grant)',
      { address: 'chefin@behoerde.example', trustedNetwork: false, account: anna },
      { accept: false, code: 'SENDER_NOT_ALLOWED' },
    ],
    [
      'a trusted client with an agency sender of 255 octets',
      { address: `${'l'.repeat(238)}@behoerde.example`, trustedNetwork: true, account: undefined },
      { accept: false, code: 'SENDER_TOO_LONG' },
    ],
    [
      'an account in a trusted network using an address it does not own (its own rights count)',
      { address: 'chefin@behoerde.example', trustedNetwork: true, account: anna },
      { accept: false, code: 'SENDER_NOT_ALLOWED' },
    ],
  ];
  for (const [name, sender, decision] of table) {
    it(`decides ${name}`, () => {
      assert.deepEqual(decideSubmissionSender(sender, domains), decision);
    });
  }
});

describe('the inbound (MX) listener and envelope senders', () => {
  const exceptions = ['newsletter@behoerde.example', '*.extern.sachsen.example'];
  const table: [string, string][] = [
    ['', 'accept'],
    ['a@gmail.example', 'accept'],
    ['chefin@behoerde.example', 'AGENCY_SENDER_FROM_OUTSIDE'],
    ['Chefin@BEHOERDE.EXAMPLE.', 'AGENCY_SENDER_FROM_OUTSIDE'],
    ['x@lra.sachsen.example', 'AGENCY_SENDER_FROM_OUTSIDE'],
    ['newsletter@behoerde.example', 'accept'],
    ['NEWSLETTER@behoerde.example', 'accept'],
    ['x@a.extern.sachsen.example', 'accept'],
    ['u%behoerde.example@evil.example', 'SENDER_INVALID'],
    ['a@b@c.example', 'SENDER_INVALID'],
    // A sender whose DSN (or quarantine notice) would go to a host a stranger chose, not to a domain of the internet.
    ['x@192.0.2.1', 'SENDER_INVALID'],
    ['x@localhost', 'SENDER_INVALID'],
    ['x@[192.0.2.1]', 'SENDER_INVALID'],
    ['x@mx.corp.internal', 'SENDER_INVALID'],
    // Longer than RFC 5321 lets an address be (254 octets): RFC 5321's own words for it, 501 Path too long.
    [`${'ü'.repeat(121)}@gmail.example`, 'SENDER_TOO_LONG'],
    [`${'l'.repeat(238)}@behoerde.example`, 'SENDER_TOO_LONG'],
    // A forwarder's SRS sender beyond the 64 octets of a local part is taken (smtp-server takes it too).
    [`SRS0=HHH=TT=${'verwaltung'.repeat(5)}.example=${'b'.repeat(9)}@forward.example`, 'accept'],
  ];
  for (const [address, expected] of table) {
    it(`answers MAIL FROM:<${address}> with ${expected}`, () => {
      const decision = decideInboundSender(address, domains, exceptions);
      assert.deepEqual(decision, expected === 'accept' ? { accept: true } : { accept: false, code: expected });
    });
  }
});

describe('From and Sender addresses on the MX port', () => {
  const exceptions = ['newsletter@behoerde.example'];
  // An agency domain with a local part a router would not take is still an agency address to a reader.
  const table: [string, boolean][] = [
    ['a@gmail.example', true],
    ['newsletter@behoerde.example', true],
    ['chefin@behoerde.example', false],
    ['chefin%x@behoerde.example', false],
    ['chefin!x@behoerde.example', false],
    ['chefin x@behoerde.example', false],
    ['chefin@BEHOERDE.example.', false],
    ['x@lra.sachsen.example', false],
    // Domains that are no names, as a reader sees them: an agency's is refused, and so is one we cannot read at all.
    ['chefin@behoerde.example..', false],
    ['chefin@[behoerde.example]', false],
    ['newsletter@behoerde.example..', false],
    ['chefin@exa mple..org', false],
    ['chefin@', false],
    ['a@[192.0.2.1]', true],
    ['a@[IPv6:2001:db8::1]', true],
    ['a@gmail.example.', true],
  ];
  for (const [address, allowed] of table) {
    it(`${allowed ? 'lets' : 'does not let'} the internet write ${address}`, () => {
      assert.equal(mayAppearAsInboundAuthor(address, domains, exceptions), allowed);
    });
  }
});

// The From and Sender fields of every message on the MX port are judged with this, up to MAX_HEADER_BYTES: a domain's
// trailing dots were looked for from each dot of a run (100,000 dots and a letter: 5 s, a megabyte minutes).
describe('a From domain of a megabyte', () => {
  const dots = '.'.repeat(1024 * 1024);

  it('is judged in one pass, its trailing dots dropped as before', () => {
    assert.equal(mayAppearAsInboundAuthor(`a@other.example${dots}`, domains, []), true);
    assert.equal(mayAppearAsInboundAuthor(`a@behoerde.example${dots}`, domains, []), false);
    assert.equal(mayAppearAsInboundAuthor(`a@[behoerde.example${dots}]`, domains, []), false);
    // No name even without its trailing dots: refused, since we cannot tell whose it is.
    assert.equal(mayAppearAsInboundAuthor(`a@x${dots}y.example`, domains, []), false);
  });
});

describe('client keys of the SMTP limits', () => {
  const table: [string, number, string][] = [
    ['192.0.2.7', 64, '192.0.2.7'],
    ['::ffff:192.0.2.7', 64, '192.0.2.7'],
    ['2001:db8:1:2:3:4:5:6', 64, '2001:db8:1:2::/64'],
    ['2001:db8:1:2:ffff:ffff:ffff:ffff', 64, '2001:db8:1:2::/64'],
    ['2001:db8:1:2:3:4:5:6', 48, '2001:db8:1::/48'],
    ['2001:db8:1:2:3:4:5:6', 128, '2001:db8:1:2:3:4:5:6/128'],
    ['not an address', 64, 'not an address'],
  ];
  for (const [ip, prefix, key] of table) {
    it(`counts ${ip} as ${key} (IPv6 /${prefix})`, () => {
      assert.equal(clientKey(ip, prefix), key);
    });
  }
  // The network counted beside each client: what one holder gets cheaply.
  const networks: [string, number, string][] = [
    ['192.0.2.7', 64, '192.0.2.0/24'],
    ['::ffff:192.0.2.200', 64, '192.0.2.0/24'],
    ['2001:db8:1:2:3:4:5:6', 64, '2001:db8:1::/48'],
    ['2001:db8:1:ffff::1', 64, '2001:db8:1::/48'],
    ['2001:db8:1:2:3:4:5:6', 40, '2001:db8::/40'],
  ];
  for (const [ip, prefix, key] of networks) {
    it(`counts ${ip} in the network ${key} (clients per IPv6 /${prefix})`, () => {
      assert.equal(networkKey(ip, prefix), key);
    });
  }
});
