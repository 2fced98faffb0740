import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyAnswer, type DeliveryAnswer, enhancedStatusOf } from '../src/bounce-classification.ts';

describe('classifyAnswer', () => {
  const cases: { answer: DeliveryAnswer; result: string; category: string; status: string }[] = [
    { answer: { reply: '250 2.0.0 Ok: queued as 4711' }, result: 'delivered', category: 'accepted', status: '2.0.0' },
    { answer: { reply: '250 Ok: sunk 1' }, result: 'delivered', category: 'accepted', status: '2.0.0' },
    {
      answer: { reply: '451 4.7.1 Greylisted, try again' },
      result: 'deferred',
      category: 'temporary',
      status: '4.7.1',
    },
    { answer: { reply: '421 Service not available' }, result: 'deferred', category: 'temporary', status: '4.0.0' },
    { answer: { reply: '452 4.2.2 Mailbox full' }, result: 'deferred', category: 'temporary', status: '4.2.2' },
    {
      answer: { reply: '552 Requested mail action aborted: exceeded storage allocation' },
      result: 'deferred',
      category: 'mailbox-full',
      status: '4.2.2',
    },
    {
      answer: { reply: '550 5.2.2 The email account that you tried to reach is over quota' },
      result: 'deferred',
      category: 'mailbox-full',
      status: '4.2.2',
    },
    {
      answer: { reply: '552 5.3.4 Message size exceeds fixed limit' },
      result: 'bounced',
      category: 'message-too-large',
      status: '5.3.4',
    },
    {
      answer: { reply: '550 5.1.1 <x@firma.example>: Recipient address rejected: User unknown' },
      result: 'bounced',
      category: 'recipient',
      status: '5.1.1',
    },
    { answer: { reply: '550 no such user' }, result: 'bounced', category: 'rejected', status: '5.0.0' },
    { answer: { reply: '554 5.7.1 Message rejected as spam' }, result: 'bounced', category: 'policy', status: '5.7.1' },
    {
      answer: { reply: '554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org' },
      result: 'deferred',
      category: 'blocklist',
      status: '4.7.1',
    },
    { answer: { errorCode: 'ECONNECTION' }, result: 'deferred', category: 'network', status: '4.4.1' },
    { answer: { errorCode: 'ECONNREFUSED' }, result: 'deferred', category: 'network', status: '4.4.1' },
    { answer: { errorCode: 'ETIMEDOUT' }, result: 'deferred', category: 'timeout', status: '4.4.2' },
    { answer: { errorCode: 'ETLS' }, result: 'deferred', category: 'tls', status: '4.7.5' },
    { answer: { errorCode: 'EDNS' }, result: 'deferred', category: 'dns', status: '4.4.3' },
    { answer: { errorCode: 'ENOTFOUND', permanent: true }, result: 'bounced', category: 'dns', status: '5.1.2' },
    { answer: { errorCode: 'ENULLMX', permanent: true }, result: 'bounced', category: 'null-mx', status: '5.1.10' },
    { answer: { errorCode: 'EDESTINATIONBUSY' }, result: 'deferred', category: 'destination-busy', status: '4.4.5' },
    {
      answer: { errorCode: 'EDESTINATIONSUSPENDED' },
      result: 'deferred',
      category: 'destination-suspended',
      status: '4.4.1',
    },
    { answer: { errorCode: 'ESTREAM' }, result: 'deferred', category: 'other', status: '4.0.0' },
    { answer: { errorCode: 'AbortError' }, result: 'deferred', category: 'other', status: '4.0.0' },
    { answer: {}, result: 'deferred', category: 'other', status: '4.0.0' },
  ];
  for (const c of cases) {
    const what =
      c.answer.reply ?? `error ${c.answer.errorCode ?? 'without a code'}${c.answer.permanent ? ' (permanent)' : ''}`;
    it(`treats ${what} as ${c.result} (${c.category}, ${c.status})`, () => {
      assert.deepEqual(classifyAnswer(c.answer), { result: c.result, category: c.category, status: c.status });
    });
  }

  it('bounces what encrypt gave up for its own header with its code, a 5.x.x status and the DSN phrase saying so', () => {
    for (const [code, status, dsnReason] of [
      ['ENCRYPT_HEADER_INVALID', '5.6.0', 'header-invalid'],
      ['ENCRYPT_HEADER_TOO_LARGE', '5.3.4', 'header-too-large'],
    ] as const) {
      assert.deepEqual(classifyAnswer({ errorCode: code }), {
        result: 'bounced',
        category: 'not-encryptable',
        status,
        code,
        dsnReason,
      });
    }
  });

  it('never bounces on an error the connector did not call permanent', () => {
    assert.equal(classifyAnswer({ errorCode: 'ENOTFOUND' }).result, 'deferred');
  });
});

describe('enhancedStatusOf', () => {
  it('reads the enhanced status code after the basic code', () => {
    assert.equal(enhancedStatusOf('550 5.1.1 no such user'), '5.1.1');
    assert.equal(enhancedStatusOf('550-5.7.26 unauthenticated'), '5.7.26');
  });

  it('finds none in a reply without one', () => {
    assert.equal(enhancedStatusOf('550 no such user'), undefined);
    assert.equal(enhancedStatusOf(undefined), undefined);
  });
});
