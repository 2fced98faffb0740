// The portal's small rules on their own: which passwords are refused, which client a limit counts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { trustedProxies } from '@smgw/config';
import { clientSubject } from '../src/portal/limits.ts';
import { passwordProblem } from '../src/portal/password-rules.ts';

describe('portal password rules', () => {
  const cases: [string, string, string[], ReturnType<typeof passwordProblem>][] = [
    ['elf Zeichen', 'elf Zeichen', [], 'short'],
    ['password1234', 'password1234', [], 'weak'],
    ['qwertzuiop123', 'qwertzuiop123', [], 'weak'],
    ['aaaaaaaaaaaaaaaa', 'aaaaaaaaaaaaaaaa', [], 'weak'],
    ['erika.mustermann1', 'erika.mustermann1', ['erika.mustermann@buerger.example', 'erika.mustermann'], 'weak'],
    ['lange Nacht am blauen See', 'lange Nacht am blauen See!', [], 'mismatch'],
    ['x'.repeat(300), 'x'.repeat(300), [], 'long'],
    ['lange Nacht am blauen See', 'lange Nacht am blauen See', [], undefined],
    ['correct horse battery staple', 'correct horse battery staple', [], undefined],
  ];
  for (const [password, repeated, inputs, expected] of cases) {
    it(`${password.slice(0, 30)} → ${expected ?? 'accepted'}`, () => {
      assert.equal(passwordProblem(password, repeated, inputs), expected);
    });
  }
});

describe('portal client of a limit', () => {
  it('counts IPv4 by address, IPv4-mapped IPv6 as IPv4, IPv6 by its /64', () => {
    assert.equal(clientSubject('192.0.2.1'), '192.0.2.1');
    assert.equal(clientSubject('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(clientSubject('2001:db8:1:2::1'), '2001:db8:1:2::/64');
    assert.equal(clientSubject('2001:0db8:0001:0002:ffff:1:2:3'), '2001:db8:1:2::/64');
    assert.equal(clientSubject('2001:db8::1'), '2001:db8:0:0::/64');
    assert.notEqual(clientSubject('2001:db8:1:3::1'), clientSubject('2001:db8:1:2::1'));
  });
});

describe('SMGW_PORTAL_TRUST_PROXY', () => {
  it('is off by default words and otherwise a list of proxy networks, never everyone by accident', () => {
    assert.equal(trustedProxies('off'), false);
    assert.equal(trustedProxies('false'), false);
    assert.deepEqual(trustedProxies('10.0.0.0/8, 192.0.2.7'), ['10.0.0.0/8', '192.0.2.7/32']);
    assert.throws(() => trustedProxies('true'));
    assert.throws(() => trustedProxies('*'));
  });
});
