// `./smgw up`'s SMGW_MAIL_AUTH: off unless asked for, on when the operator names DNS servers to ask.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { localMailAuth } from '../src/local-mail-auth.ts';

describe('localMailAuth: SPF, DKIM and DMARC under ./smgw up', () => {
  it('is off when nothing is set (no question to the internet for every test mail)', () => {
    assert.equal(localMailAuth({}), 'off');
    assert.equal(localMailAuth({ SMGW_DNS_RESOLVERS: ' ' }), 'off');
  });

  it('is on when SMGW_DNS_RESOLVERS names servers to ask, as SPEC.md promises for inbound mail', () => {
    assert.equal(localMailAuth({ SMGW_DNS_RESOLVERS: '127.0.0.1:5353' }), 'on');
  });

  it('is what SMGW_MAIL_AUTH says when set', () => {
    assert.equal(localMailAuth({ SMGW_MAIL_AUTH: 'on' }), 'on');
    assert.equal(localMailAuth({ SMGW_MAIL_AUTH: 'off', SMGW_DNS_RESOLVERS: '127.0.0.1:5353' }), 'off');
  });
});
