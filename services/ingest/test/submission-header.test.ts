// The header block of submitted mail: From and Sender addresses checked against what the client may use, the author
// taken from From, Bcc removed; streamed, whatever the chunking.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { domainOrAddressList } from '@smgw/config';
import { simpleParser } from 'mailparser';
import { mayAppearAsInboundAuthor } from '../src/sender-policy.ts';
import {
  type CheckedHeader,
  decideAuthor,
  MAX_HEADER_LINES,
  SubmissionHeaderError,
  withCheckedSubmissionHeader,
  withoutBcc,
} from '../src/submission-header.ts';

/** The account owns anna@ and poststelle@ of behoerde.example. */
const OWNED = new Set(['anna@behoerde.example', 'poststelle@behoerde.example']);
const mayUse = (address: string) => OWNED.has(address.toLowerCase());
const header = (...fields: string[]) => fields.map((f) => `${f}\r\n`).join('');

describe('deciding on the From and Sender addresses of a submitted message', () => {
  const table: Array<[string, string, string | false]> = [
    ['an owned From address', header('From: Anna <anna@behoerde.example>'), 'anna@behoerde.example'],
    ['an owned address in any case', header('From: ANNA@Behoerde.Example'), 'anna@behoerde.example'],
    ['a foreign From address', header('From: Chefin <chefin@behoerde.example>'), false],
    ['two From addresses, one foreign', header('From: anna@behoerde.example, chefin@behoerde.example'), false],
    [
      'a display name that looks like an owned address',
      header('From: "anna@behoerde.example" <chefin@behoerde.example>'),
      false,
    ],
    [
      'an owned address with a foreign address as its display name',
      header('From: "chefin@behoerde.example" <anna@behoerde.example>'),
      false,
    ],
    ['a foreign address in a comment', header('From: anna@behoerde.example (chefin@behoerde.example)'), false],
    [
      'a foreign address in an encoded-word display name',
      header('From: =?utf-8?b?Y2hlZmluQGJlaG9lcmRlLmV4YW1wbGU=?= <anna@behoerde.example>'),
      false,
    ],
    ['a group with a foreign member', header('From: Amt: anna@behoerde.example, chefin@behoerde.example;'), false],
    [
      'a group of owned addresses',
      header('From: Amt: anna@behoerde.example, poststelle@behoerde.example;'),
      'anna@behoerde.example',
    ],
    ['a From without an address', header('From: Die Chefin'), false],
    ['an empty group as From', header('From: undisclosed-recipients:;'), false],
    ['a second, foreign From field', header('From: anna@behoerde.example', 'From: chefin@behoerde.example'), false],
    ['a foreign Sender', header('From: anna@behoerde.example', 'Sender: chefin@behoerde.example'), false],
    [
      'an owned Sender beside an owned From (the author is From)',
      header('From: poststelle@behoerde.example', 'Sender: anna@behoerde.example'),
      'poststelle@behoerde.example',
    ],
    ['a field name with space before the colon', header('From : chefin@behoerde.example'), false],
    ['a lower-case folded field', header('from: Anna', ' <chefin@behoerde.example>'), false],
    ['a folded owned address', header('From: Anna', '\t<anna@behoerde.example>'), 'anna@behoerde.example'],
    [
      'a From-like name of another field',
      header('X-From: chefin@behoerde.example', 'From: anna@behoerde.example'),
      'anna@behoerde.example',
    ],
  ];
  for (const [name, block, author] of table) {
    it(`${author ? 'accepts' : 'refuses'} ${name}`, () => {
      const decision = decideAuthor(block, mayUse);
      if (author) assert.deepEqual(decision, { accept: true, author });
      else assert.equal(decision.accept, false);
    });
  }

  it('accepts a message without From (its author is then the envelope sender)', () => {
    assert.deepEqual(decideAuthor(header('Subject: x'), mayUse), { accept: true, author: undefined });
  });
});

describe('a field whose colon is on its folded second line (`From` CRLF SP `: x`)', () => {
  // Unfolded it reads `From : x`, an obs-field: mailparser (nodemailer's, as the portal reads mail) shows it as From,
  // and forged-header-fields.ts already judges such a field unfolded. The From check must see it too.
  const folded = header('From', ' : Chefin <chefin@behoerde.example>', 'Subject: x');

  it('is read as From by mailparser', async () => {
    const parsed = await simpleParser(Buffer.from(`${folded}\r\nbody\r\n`, 'latin1'));
    assert.equal(parsed.from?.value[0]?.address, 'chefin@behoerde.example');
  });

  it('refuses a foreign From written so, alone or after an owned From', () => {
    assert.equal(decideAuthor(folded, mayUse).accept, false);
    assert.equal(decideAuthor(header('From: anna@behoerde.example') + folded, mayUse).accept, false);
  });

  it('refuses a foreign Sender written so, the colon after a tab', () => {
    const block = header('From: anna@behoerde.example', 'Sender', '\t: chefin@behoerde.example');
    assert.equal(decideAuthor(block, mayUse).accept, false);
  });

  it('takes an owned From written so as the author', () => {
    assert.deepEqual(decideAuthor(header('From', ' : <anna@behoerde.example>'), mayUse), {
      accept: true,
      author: 'anna@behoerde.example',
    });
  });

  it('removes a Bcc written so', () => {
    const block = header('From: a@b.example', 'Bcc', ' : versteckt@y.example', 'To: t@y.example');
    assert.deepEqual(withoutBcc(block), { block: header('From: a@b.example', 'To: t@y.example'), removed: 1 });
  });
});

describe('From written in UTF-8 (RFC 6532), and addresses that are no addresses', () => {
  // The header block as checkedBlock gives it: one character per byte.
  const bytesOf = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
  const idnAgency = ['behoerde.example', 'xn--bcher-kva.example'];
  const mx = (address: string) => mayAppearAsInboundAuthor(address, idnAgency, []);

  it('refuses an agency address of an IDN domain in UTF-8 on the MX port, as in its A-label', () => {
    for (const from of ['Chefin <chefin@bücher.example>', 'chefin@BÜCHER.example', 'chefin@xn--bcher-kva.example']) {
      assert.equal(decideAuthor(bytesOf(header(`From: ${from}`)), mx).accept, false, from);
    }
    assert.equal(decideAuthor(bytesOf(header('From: "chefin@bücher.example" <a@extern.example>')), mx).accept, false);
    assert.equal(decideAuthor(bytesOf(header('From: Jörg <joerg@bücherei.example>')), mx).accept, true);
  });

  it('takes an agency user’s own IDN address in UTF-8 on submission, with the A-label as author', () => {
    const owned = (address: string) => domainOrAddressList(address)[0] === 'anna@xn--bcher-kva.example';
    assert.deepEqual(decideAuthor(bytesOf(header('From: Anna <Anna@bücher.example>')), owned), {
      accept: true,
      author: 'anna@xn--bcher-kva.example',
    });
  });

  it('reads 8-bit bytes that are not UTF-8 as they are (Latin-1)', () => {
    const block = Buffer.from('From: J\xf6rg <anna@behoerde.example>\r\n', 'latin1').toString('latin1');
    assert.deepEqual(decideAuthor(block, mayUse), { accept: true, author: 'anna@behoerde.example' });
  });

  it('names an author that is no address as written (lower-cased) instead of failing', () => {
    assert.deepEqual(
      decideAuthor(header('From: Chefin@Behoerde.example..'), () => true),
      {
        accept: true,
        author: 'chefin@behoerde.example..',
      },
    );
  });
});

describe('removing Bcc', () => {
  it('removes every Bcc field, folded or not, and keeps every other byte', () => {
    const block = header(
      'From: a@b.example',
      'Bcc: x@y.example,',
      ' z@y.example',
      'To: t@y.example',
      'BCC : w@y.example',
    );
    assert.deepEqual(withoutBcc(block), { block: header('From: a@b.example', 'To: t@y.example'), removed: 2 });
  });

  it('removes Resent-Bcc as well (a client’s redirect writes it)', () => {
    const block = header('Resent-From: a@b.example', 'Resent-Bcc: versteckt@y.example', 'resent-bcc :', ' v@y.example');
    assert.deepEqual(withoutBcc(block), { block: header('Resent-From: a@b.example'), removed: 2 });
  });

  it('leaves a block without Bcc as it is', () => {
    const block = header('From: a@b.example', 'X-Bcc-Note: kept', 'Resent-To: kept@y.example');
    assert.deepEqual(withoutBcc(block), { block, removed: 0 });
  });
});

async function run(message: string, chunkSize: number, maxHeaderBytes?: number) {
  const bytes = Buffer.from(message, 'latin1');
  async function* chunks() {
    for (let i = 0; i < bytes.length; i += chunkSize) yield bytes.subarray(i, i + chunkSize);
  }
  let checked: CheckedHeader | undefined;
  const out: Buffer[] = [];
  const options = { gatewayHostname: 'smgw.test', maxHeaderBytes };
  for await (const chunk of withCheckedSubmissionHeader(chunks(), mayUse, (c) => (checked = c), options)) {
    out.push(Buffer.from(chunk));
  }
  return { text: Buffer.concat(out).toString('latin1'), checked };
}

describe('checking the header while the message streams', () => {
  const message = `${header('From: Anna <anna@behoerde.example>', 'Bcc: geheim@buerger.example', 'Subject: x')}\r\nBcc: body text stays\r\n`;
  for (const size of [1, 2, 3, 7, 64, 100_000]) {
    it(`removes Bcc from the header and leaves the body alone, in chunks of ${size}`, async () => {
      const { text, checked } = await run(message, size);
      assert.equal(text, message.replace('Bcc: geheim@buerger.example\r\n', ''));
      assert.deepEqual(checked, { author: 'anna@behoerde.example', removedBcc: 1, removedGatewayFields: [] });
    });
  }

  it('refuses a foreign From before any of the body passes', async () => {
    await assert.rejects(run(`${header('From: chefin@behoerde.example')}\r\nbody\r\n`, 5), {
      name: 'SubmissionHeaderError',
      code: 'FROM_NOT_ALLOWED',
    });
  });

  it('checks a message that is all header', async () => {
    await assert.rejects(run(header('Subject: x', 'From: chefin@behoerde.example'), 4), SubmissionHeaderError);
    const { text, checked } = await run(header('From: anna@behoerde.example'), 4);
    assert.equal(text, header('From: anna@behoerde.example'));
    assert.equal(checked?.author, 'anna@behoerde.example');
  });

  it('takes a message without header fields as it is', async () => {
    const { text, checked } = await run('\r\nonly a body\r\n', 3);
    assert.equal(text, '\r\nonly a body\r\n');
    assert.deepEqual(checked, { author: undefined, removedBcc: 0, removedGatewayFields: [] });
  });

  it('refuses a header block longer than the limit', async () => {
    const long = `${header('From: anna@behoerde.example', `X-Long: ${'x'.repeat(500)}`)}\r\nbody\r\n`;
    await assert.rejects(run(long, 64, 256), { code: 'HEADER_TOO_LARGE' });
    await assert.rejects(run(header(`X-Long: ${'x'.repeat(500)}`), 64, 256), { code: 'HEADER_TOO_LARGE' });
  });

  it('refuses a header block of more lines than MAX_HEADER_LINES, also when folded into one field', async () => {
    // mailauth's DKIM verifier reads header lines in time quadratic in their number: 80,000 took 80 s.
    const lines = (n: number) => `X-Many: 1\r\n${' a\r\n'.repeat(n - 2)}From: anna@behoerde.example\r\n`;
    const { checked } = await run(`${lines(MAX_HEADER_LINES)}\r\nbody\r\n`, 4096);
    assert.equal(checked?.author, 'anna@behoerde.example');
    await assert.rejects(run(`${lines(MAX_HEADER_LINES + 1)}\r\nbody\r\n`, 4096), { code: 'HEADER_TOO_LARGE' });
    await assert.rejects(run(lines(MAX_HEADER_LINES + 1), 4096), { code: 'HEADER_TOO_LARGE' });
  });
});
