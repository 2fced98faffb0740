import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildNotice, inboundNoticeAllowance, loadNoticeTemplates, noticeGroups } from '../src/notice.ts';
import { testEnvelope } from './fixtures.ts';

const blob = { ref: 'a'.repeat(64), sha256: 'a'.repeat(64), size: 10 };

async function render(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

describe('who gets the notice', () => {
  const to = (groups: ReturnType<typeof noticeGroups>) => groups.map((g) => g.to);

  it('is the sender for internal, outbound and portal mail, about every recipient', () => {
    for (const direction of ['internal', 'outbound', 'portal'] as const) {
      const envelope = testEnvelope(blob, direction);
      assert.deepEqual(noticeGroups(envelope, undefined), [
        { to: ['clerk@behoerde.example'], recipients: envelope.recipients },
      ]);
    }
  });

  it('is postmaster@ each recipient domain for inbound mail, or the configured address', () => {
    const inbound = testEnvelope(blob, 'inbound', { recipients: ['a@Behoerde.example', 'b@behoerde.example'] });
    assert.deepEqual(to(noticeGroups(inbound, undefined)), [['postmaster@behoerde.example']]);
    assert.deepEqual(noticeGroups(inbound, 'virus@behoerde.example'), [
      { to: ['virus@behoerde.example'], recipients: inbound.recipients },
    ]);
  });

  it("tells each agency's postmaster about its own recipients only, not the other agency's (a Bcc there)", () => {
    const inbound = testEnvelope(blob, 'inbound', {
      recipients: ['a@stadt.example', 'geheim@land.example', 'b@stadt.example'],
    });
    assert.deepEqual(noticeGroups(inbound, undefined), [
      { to: ['postmaster@stadt.example'], recipients: ['a@stadt.example', 'b@stadt.example'] },
      { to: ['postmaster@land.example'], recipients: ['geheim@land.example'] },
    ]);
  });

  it('is nobody for a null sender or generated mail', () => {
    assert.deepEqual(noticeGroups(testEnvelope(blob, 'internal', { mailFrom: '' }), undefined), []);
    assert.deepEqual(noticeGroups(testEnvelope(blob, 'generated'), undefined), []);
  });
});

describe('how many notices about inbound mail go out', () => {
  it('counts per sender network (IPv4 /24, IPv6 /48, mapped IPv4 as IPv4), not per address', () => {
    const earlier = ['198.51.100.1', '::ffff:198.51.100.2', '2001:db8:1:2::1', '203.0.113.5'];
    assert.equal(inboundNoticeAllowance(earlier, '198.51.100.250', 3), 'last', 'two of that /24 so far');
    assert.equal(inboundNoticeAllowance(earlier, '198.51.100.250', 2), 'withhold');
    assert.equal(inboundNoticeAllowance(earlier, '198.51.101.1', 2), 'send', 'the next /24 is another network');
    assert.equal(inboundNoticeAllowance(earlier, '2001:db8:1:ffff::9', 1), 'withhold', 'same /48');
    assert.equal(inboundNoticeAllowance(earlier, '2001:db8:2::1', 1), 'last', 'another /48');
    assert.equal(inboundNoticeAllowance(['', 'junk'], '', 2), 'last', 'an address that does not parse is its own');
    assert.equal(inboundNoticeAllowance([], '192.0.2.1', 0), 'withhold', '0: none');
  });

  it('counts over all networks too: a botnet spread over many networks gets no more than the overall limit', () => {
    const earlier = ['198.51.100.1', '203.0.113.5', '192.0.2.9'];
    assert.equal(inboundNoticeAllowance(earlier, '198.18.0.1', 10, 5), 'send');
    assert.equal(inboundNoticeAllowance(earlier, '198.18.0.1', 10, 4), 'last-overall', 'three of four so far');
    assert.equal(inboundNoticeAllowance(earlier, '198.18.0.1', 10, 3), 'withhold');
    assert.equal(inboundNoticeAllowance(earlier, '198.51.100.7', 2, 4), 'last-overall', 'the overall last says so');
    assert.equal(inboundNoticeAllowance(earlier, '198.51.100.7', 2, 10), 'last');
    assert.equal(inboundNoticeAllowance([], '192.0.2.1', 10, 0), 'withhold', '0: none');
  });
});

describe('the notice', () => {
  it('names the finding and the message id in German and English and is marked auto-generated', async () => {
    const original = testEnvelope(blob, 'outbound');
    const text = await render(
      buildNotice({
        original,
        to: ['clerk@behoerde.example'],
        recipients: original.recipients,
        verdict: 'suspicious',
        finding: 'Heuristics.Encrypted.Zip\r\nBcc: injected@example.org',
        noticeMessageId: '01KNOTICE0000000000000000',
        hostname: 'smgw.test',
        now: new Date('2026-03-02T10:00:00Z'),
        expiresAt: new Date('2026-04-01T10:00:00Z'),
        templates: await loadNoticeTemplates(),
      }).createReadStream(),
    );
    assert.ok(text.includes(original.id));
    assert.match(text, /Heuristics\.Encrypted\.Zip/);
    assert.match(text, /Auto-Submitted: auto-generated/);
    assert.match(text, /From: Mail Gateway <MAILER-DAEMON@smgw\.test>/);
    assert.doesNotMatch(text, /^Bcc:/m, 'a finding cannot add header lines');
  });

  it('names every recipient whole', async () => {
    const recipients = ['a1@behoerde.example', 'b2@behoerde.example', 'c3@behoerde.example', 'd4@behoerde.example'];
    const text = await render(
      buildNotice({
        original: testEnvelope(blob, 'outbound', { recipients }),
        to: ['clerk@behoerde.example'],
        recipients,
        verdict: 'infected',
        finding: 'Eicar-Signature',
        noticeMessageId: '01KNOTICE0000000000000000',
        hostname: 'smgw.test',
        now: new Date('2026-03-02T10:00:00Z'),
        expiresAt: new Date('2026-04-01T10:00:00Z'),
        templates: await loadNoticeTemplates(),
      }).createReadStream(),
    );
    for (const recipient of recipients) assert.ok(text.includes(recipient), `${recipient} is named in the notice`);
  });
});
