// Fields in the gateway's name are removed from every incoming message (issue 8, finding 8); nothing else changes.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { isGatewayField } from '../src/forged-header-fields.ts';
import { withCheckedSubmissionHeader } from '../src/submission-header.ts';

const HOST = 'smgw.test';

/** The message through ingest's header check (which removes these fields), any From allowed. */
async function filtered(message: string, chunkSize: number): Promise<{ out: string; removed: string[] }> {
  const bytes = Buffer.from(message, 'latin1');
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
  let removed: string[] = [];
  const out: Buffer[] = [];
  const checked = withCheckedSubmissionHeader(
    Readable.from(chunks),
    () => true,
    (header) => {
      removed = header.removedGatewayFields;
    },
    { gatewayHostname: HOST },
  );
  for await (const chunk of checked) out.push(Buffer.from(chunk));
  return { out: Buffer.concat(out).toString('latin1'), removed };
}

describe('fields only the gateway writes', () => {
  const table: [string, boolean][] = [
    ['X-SMGW-Signature: TOTAL_PASSED; level=QES', true],
    ['x-smgw-decryption: failed', true],
    ['X-Smgw-Anything: 1', true],
    ['Authentication-Results: smgw.test; dmarc=pass', true],
    ['Authentication-Results: SMGW.TEST.; spf=pass', true],
    ['Authentication-Results: (comment) smgw.test; dkim=pass', true],
    ['Authentication-Results: ((nested) comment) smgw.test; dkim=pass', true],
    ['Authentication-Results: "smgw.test"; dmarc=pass', true],
    // RFC 8601 §2.2 (value of RFC 2045, comments and quoted strings of RFC 5322): a quoted-pair stands for its
    // character, in a quoted string and in a comment alike.
    ['Authentication-Results: "smgw\\.test"; dmarc=pass', true],
    ['Authentication-Results: "SMGW.tes\\t."; dmarc=pass', true],
    ['Authentication-Results: (a \\( b) smgw.test; dmarc=pass', true],
    ['Authentication-Results: (a \\) b) smgw.test; dmarc=pass', true],
    ['Authentication-Results: (a (b \\(c) \\\\) smgw.test; dmarc=pass', true],
    ['Authentication-Results: smgw.test(comment); dmarc=pass', true],
    ['Authentication-Results: smgw.test 1; dmarc=pass', true],
    ['Authentication-Results: "smgw.test(x)"; dmarc=pass', false],
    ['Authentication-Results: "smgw.test', true],
    ['Authentication-Results: mx.example.org; dmarc=pass', false],
    ['Authentication-Results: smgw.test.evil.example; dmarc=pass', false],
    ['X-SMGWx: 1', false],
    ['Subject: X-SMGW-Signature: TOTAL_PASSED', false],
  ];
  for (const [field, ours] of table) {
    it(`${ours ? 'removes' : 'keeps'} ${field}`, () => {
      assert.equal(isGatewayField(field, HOST), ours);
    });
  }
});

describe('removing them while the header block is checked', () => {
  const message = [
    'Received: from a by b',
    'X-SMGW-Signature: TOTAL_PASSED;',
    '\tlevel=QES; signatures=2',
    'Subject: Bescheid',
    'Authentication-Results: smgw.test;',
    ' dmarc=pass',
    'Authentication-Results: mx.example.org; spf=pass',
    '',
    'X-SMGW-Signature: in the body stays',
    '',
  ].join('\r\n');
  const expected = [
    'Received: from a by b',
    'Subject: Bescheid',
    'Authentication-Results: mx.example.org; spf=pass',
    '',
    'X-SMGW-Signature: in the body stays',
    '',
  ].join('\r\n');

  for (const size of [1, 3, 17, 4096]) {
    it(`removes folded fields in our name from the header only, read ${size} bytes at a time`, async () => {
      const { out, removed } = await filtered(message, size);
      assert.equal(out, expected);
      assert.deepEqual(removed, ['X-SMGW-Signature', 'Authentication-Results']);
    });
  }

  it('leaves a message without such fields byte for byte, also without a blank line or a final line end', async () => {
    for (const text of [
      'Subject: a\r\n\r\nbody',
      'Subject: a\r\nFrom: b@c.example',
      '',
      '\r\nonly body\r\n',
      'Subject: a\n\nLF',
    ]) {
      assert.equal((await filtered(text, 2)).out, text);
    }
  });

  // Ingest puts its Received field right in front of the client's header block: a block that starts with a folded
  // line would continue that field, and the client would write into the gateway's own trace field.
  for (const size of [1, 5, 4096]) {
    it(`removes folded lines before the first field (they would continue our Received), read ${size} bytes at a time`, async () => {
      const forged =
        '\tfor <chefin@behoerde.example>; Tue, 1 Jan 2030 00:00:00 +0000\r\n (authenticated)\r\nSubject: a\r\n\r\n x\r\n';
      const { out, removed } = await filtered(forged, size);
      assert.equal(out, 'Subject: a\r\n\r\n x\r\n');
      assert.deepEqual(removed, ['Received (continued)']);
    });
  }

  it('removes a last field without a line end but keeps the field before it', async () => {
    assert.equal((await filtered('Subject: a\r\nX-SMGW-Signature: TOTAL_PASSED', 5)).out, 'Subject: a\r\n');
  });

  // A field too long to hold is still one of ours by its name: padding must not carry a forgery past the filter.
  const padding = ` ${'x'.repeat(900)}\r\n`.repeat(80);
  for (const size of [7, 4096, 1 << 20]) {
    it(`removes an X-SMGW field padded past 64 KiB with folded lines, read ${size} bytes at a time`, async () => {
      const forged = `Subject: a\r\nX-SMGW-Signature: TOTAL_PASSED\r\n${padding}To: b@c.example\r\n\r\nbody`;
      const { out, removed } = await filtered(forged, size);
      assert.equal(out, 'Subject: a\r\nTo: b@c.example\r\n\r\nbody');
      assert.deepEqual(removed, ['X-SMGW-Signature']);
    });

    it(`removes an X-SMGW field on one line longer than 64 KiB, read ${size} bytes at a time`, async () => {
      const forged = `X-SMGW-Signature: TOTAL_PASSED${' '.repeat(70_000)}\r\nSubject: a\r\n\r\nbody`;
      const { out, removed } = await filtered(forged, size);
      assert.equal(out, 'Subject: a\r\n\r\nbody');
      assert.deepEqual(removed, ['X-SMGW-Signature']);
    });

    it(`removes an Authentication-Results field padded past 64 KiB, read ${size} bytes at a time`, async () => {
      const forged = `Authentication-Results: smgw.test;\r\n${padding} dmarc=pass\r\nSubject: a\r\n\r\nbody`;
      assert.equal((await filtered(forged, size)).out, 'Subject: a\r\n\r\nbody');
    });

    it(`keeps any other field longer than 64 KiB byte for byte, read ${size} bytes at a time`, async () => {
      const long = `Subject: a\r\nX-Long: ${'y'.repeat(70_000)}\r\nX-Folded: z\r\n${padding}To: b\r\n\r\nbody`;
      assert.equal((await filtered(long, size)).out, long);
    });
  }
});
