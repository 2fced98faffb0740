import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildReceivedHeader, receivedProtocol } from '../src/received-header.ts';

const date = new Date('2025-01-07T09:30:05Z');

describe('Received header', () => {
  it('names client, gateway, protocol, message id, the single recipient and the date', () => {
    const header = buildReceivedHeader({
      helo: 'mail.client.example',
      clientIp: '192.0.2.1',
      byHostname: 'smgw.example',
      protocol: 'ESMTPS',
      tls: 'TLSv1.3:TLS_AES_256_GCM_SHA384',
      messageId: '01J9Z3X4Q8R2M5N7P0S6T1V3W4',
      forRecipient: 'a@behoerde.example',
      date,
    });
    assert.equal(
      header,
      'Received: from mail.client.example ([192.0.2.1])\r\n' +
        '\tby smgw.example with ESMTPS (TLSv1.3:TLS_AES_256_GCM_SHA384) id 01J9Z3X4Q8R2M5N7P0S6T1V3W4\r\n' +
        '\tfor <a@behoerde.example>; Tue, 07 Jan 2025 09:30:05 +0000\r\n',
    );
  });

  it('leaves out `for` when there are several recipients', () => {
    const header = buildReceivedHeader({
      helo: 'h',
      clientIp: '2001:db8::1',
      byHostname: 'smgw.example',
      protocol: 'ESMTP',
      messageId: '01J9Z3X4Q8R2M5N7P0S6T1V3W4',
      date,
    });
    assert.equal(
      header,
      'Received: from h ([IPv6:2001:db8::1])\r\n' +
        '\tby smgw.example with ESMTP id 01J9Z3X4Q8R2M5N7P0S6T1V3W4; Tue, 07 Jan 2025 09:30:05 +0000\r\n',
    );
  });

  it('cannot be used to inject header lines or break out of its comment', () => {
    const header = buildReceivedHeader({
      helo: 'evil\r\nBcc: x@y (nested) ; x',
      clientIp: '192.0.2.1\r\nX: y',
      byHostname: 'smgw.example',
      protocol: 'ESMTP',
      messageId: '01J9Z3X4Q8R2M5N7P0S6T1V3W4',
      forRecipient: 'a>\r\nX-Injected: 1@behoerde.example',
      date,
    });
    assert.equal(
      header,
      'Received: from evil__Bcc:_x_y__nested____x ([IPv6:192.0.2.1___:__])\r\n' +
        '\tby smgw.example with ESMTP id 01J9Z3X4Q8R2M5N7P0S6T1V3W4\r\n' +
        '\tfor <a___X-Injected:_1@behoerde.example>; Tue, 07 Jan 2025 09:30:05 +0000\r\n',
    );
  });

  it('shows an internationalised recipient domain in its ASCII form', () => {
    const header = buildReceivedHeader({
      helo: 'h',
      clientIp: '192.0.2.1',
      byHostname: 'smgw.example',
      protocol: 'ESMTP',
      messageId: '01J9Z3X4Q8R2M5N7P0S6T1V3W4',
      forRecipient: 'a@bücher.example',
      date,
    });
    assert.match(header, /for <a@xn--bcher-kva\.example>;/);
  });
});

describe('Received protocol names (RFC 3848)', () => {
  const table: [Parameters<typeof receivedProtocol>[0], string][] = [
    [{ ehlo: false, tls: false, authenticated: false }, 'SMTP'],
    [{ ehlo: true, tls: false, authenticated: false }, 'ESMTP'],
    [{ ehlo: true, tls: true, authenticated: false }, 'ESMTPS'],
    [{ ehlo: true, tls: false, authenticated: true }, 'ESMTPA'],
    [{ ehlo: true, tls: true, authenticated: true }, 'ESMTPSA'],
  ];
  for (const [session, name] of table) {
    it(`calls ${JSON.stringify(session)} ${name}`, () => {
      assert.equal(receivedProtocol(session), name);
    });
  }
});
