// mail-auth.ts on its own: a message fed to MessageAuthentication chunk by chunk, DNS from the stub server.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MAX_HEADER_BYTES } from '@smgw/mime';
import { createDkimTestKey, type StubDns, startStubDns } from '@smgw/testing';
import {
  authenticationResultsField,
  blankLineEnd,
  createDnsLookup,
  MAX_DKIM_BODY_HASHES,
  MAX_DKIM_SIGNATURES,
  MAX_DKIM_SIGNED_FIELD_NAMES,
  MAX_FROM_DOMAINS,
  MAX_LOOKUPS_PER_METHOD,
  type MailAuthSettings,
  startMailAuthentication,
} from '../src/mail-auth.ts';

const dkimKey = createDkimTestKey();
const MESSAGE = 'From: a@signed.example\r\nSubject: x\r\n\r\nbody\r\n';

function signedBy(selectors: string[]): Promise<string> {
  return dkimKey.sign(MESSAGE, 'signed.example', selectors);
}

describe('mail-auth', () => {
  let dns: StubDns;
  let settings: MailAuthSettings;

  before(async () => {
    dns = await startStubDns();
    dns.set('sel._domainkey.signed.example', [{ type: 'TXT', text: dkimKey.record }]);
    settings = {
      hostname: 'smgw.test',
      dmarcReject: true,
      dnsFailure: 'mark',
      lookup: createDnsLookup({ servers: [dns.address], timeoutMs: 500 }),
    };
  });
  after(() => dns.close());

  const identity = { ip: '192.0.2.1', helo: 'mx.signed.example', mailFrom: 'a@signed.example' };

  it('verifies a signature fed one byte at a time (the header end split across chunks)', async () => {
    const auth = startMailAuthentication(settings, identity);
    for (const byte of Buffer.from(await signedBy(['sel']))) await auth.write(Uint8Array.of(byte));
    const result = await auth.finish();
    assert.deepEqual([result.dkim, result.spf, result.dmarc, result.decision], [['pass'], 'none', ['none'], 'accept']);
  });

  it('gives the verifier only the header block of an unsigned message, with the same results however it is cut', async () => {
    const body = `${'line of the body\r\n'.repeat(5000)}DKIM-Signature: v=1; in the body, not a field\r\n`;
    const message = Buffer.from(`From: a@signed.example\r\nSubject: unsigned\r\n\r\n${body}`);
    const blankLine = message.indexOf('\r\n\r\n');
    for (const cuts of [[], [1], [blankLine + 1], [blankLine + 2], [blankLine + 3], [blankLine + 4, blankLine + 5]]) {
      const auth = startMailAuthentication(settings, identity);
      let at = 0;
      for (const cut of [...cuts, message.length]) {
        await auth.write(message.subarray(at, cut));
        at = cut;
      }
      assert.equal(auth.readsBody, false, `cut at ${cuts}`);
      const result = await auth.finish();
      assert.deepEqual([result.dkim, result.dmarc, result.decision], [['none'], ['none'], 'accept'], `cut at ${cuts}`);
    }
  });

  it('finds the end of the header block in the bytes where the expressions on its text find it, however it is cut', () => {
    // What watchHeaderBlock matched on the whole chunk's text before: a message's first line blank, or an empty line.
    const byExpression = (text: string) => {
      const match = /^\r?\n/.exec(text) ?? /\n\r?\n/.exec(text);
      return match ? match.index + match[0].length : undefined;
    };
    const letters = ['a', ':', ' ', '\r', '\n'];
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 3000; round++) {
      const text = Array.from({ length: 1 + random(12) }, () => letters[random(letters.length)]).join('');
      const cut = random(text.length + 1);
      const expected = byExpression(text);
      const before = text.slice(0, cut);
      const inBefore = byExpression(before);
      if (inBefore !== undefined) continue; // found in an earlier chunk: the chunk after it is never searched
      const found = blankLineEnd(before, Buffer.from(text.slice(cut), 'latin1'));
      assert.equal(found === undefined ? undefined : cut + found, expected, JSON.stringify([before, text.slice(cut)]));
    }
  });

  it('gives the verifier the body whenever the header block names a DKIM signature in any spelling', async () => {
    const signed = await signedBy(['sel']);
    for (const header of [signed, `x-old-dkim-signature: kept\r\n${MESSAGE}`, `DkIm-SiGnAtUrE : v=1\r\n${MESSAGE}`]) {
      const auth = startMailAuthentication(settings, identity);
      await auth.write(Buffer.from(header));
      assert.equal(auth.readsBody, true, header.slice(0, 30));
      await auth.finish();
    }
    // And the body is really checked: a signed message whose body changed does not pass (mailauth: body hash
    // mismatch is `neutral`, RFC 6376 §6.1.3).
    const auth = startMailAuthentication(settings, identity);
    await auth.write(Buffer.from(signed.replace('body\r\n', 'other body\r\n')));
    assert.deepEqual((await auth.finish()).dkim, ['neutral']);
  });

  it('refuses to hold a header block longer than MAX_HEADER_BYTES', async () => {
    // Another sender domain: this test's SPF question may still be answered during the next test.
    const auth = startMailAuthentication(settings, { ...identity, mailFrom: 'a@other.example' });
    const line = Buffer.from(`X-Filler: ${'x'.repeat(1000)}\r\n`);
    await assert.rejects(
      async () => {
        for (let sent = 0; sent <= MAX_HEADER_BYTES; sent += line.length) await auth.write(line);
      },
      { code: 'HEADER_TOO_LARGE' },
    );
    auth.abort();
  });

  it(`asks at most ${MAX_LOOKUPS_PER_METHOD} DNS questions for the DKIM signatures of a message, and DMARC is still asked`, async () => {
    dns.set('_dmarc.signed.example', [{ type: 'TXT', text: 'v=DMARC1; p=reject' }]);
    const before = dns.queries.length;
    const auth = startMailAuthentication(settings, identity);
    const selectors = Array.from({ length: MAX_LOOKUPS_PER_METHOD + 10 }, (_, i) => `s${i}`);
    await auth.write(Buffer.from(await signedBy(selectors)));
    const result = await auth.finish();
    dns.set('_dmarc.signed.example', []);
    const asked = dns.queries.slice(before).filter((q) => !q.includes('other.example'));
    const keys = asked.filter((q) => q.includes('._domainkey.'));
    assert.equal(keys.length, MAX_LOOKUPS_PER_METHOD);
    assert.ok(result.dkim.includes('temperror'), 'the signatures beyond the budget are not judged');
    assert.equal(result.field.match(/\tdkim=/g)?.length, 10, 'at most ten results of one method are shown');
    // The many signatures did not use up the DMARC question: the p=reject domain is judged (and fails: no key).
    assert.ok(asked.includes('TXT _dmarc.signed.example'));
    assert.deepEqual([result.dmarc, result.decision], [['fail'], 'DMARC_REJECT']);
  });

  it(`refuses, before the body, DKIM signatures that need more than ${MAX_DKIM_BODY_HASHES} body hashes`, async () => {
    // Each distinct (c=, a=, l=) hashes the whole body once more: 1,000 of them on a 2 MB body took 5 s of CPU.
    const auth = startMailAuthentication(settings, { ...identity, mailFrom: 'a@other.example' });
    const signature = (l: number) =>
      `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=signed.example; s=sel;\r\n\tl=${l}; h=from; bh=AA; b=AA\r\n`;
    const fields = Array.from({ length: MAX_DKIM_BODY_HASHES + 1 }, (_, i) => signature(1_000_000 + i)).join('');
    await assert.rejects(auth.write(Buffer.from(`${fields}From: a@signed.example\r\n\r\nbody\r\n`)), {
      code: 'DMARC_REJECT',
    });
    auth.abort();
  });

  it(`refuses, before the body, more than ${MAX_DKIM_SIGNATURES} DKIM signatures or ${MAX_DKIM_SIGNED_FIELD_NAMES} signed field names`, async () => {
    // Each signature copies the field list, each name of its h= searches it: 50 × 10,000 names took 54 s of CPU.
    const signature = (h: string) =>
      `DKIM-Signature: v=1; a=rsa-sha256; d=signed.example; s=sel; h=${h}; bh=AA; b=AA\r\n`;
    const many = signature('from').repeat(MAX_DKIM_SIGNATURES + 1);
    const long = signature(Array.from({ length: MAX_DKIM_SIGNED_FIELD_NAMES + 1 }, () => 'x').join(':'));
    for (const fields of [many, long]) {
      const auth = startMailAuthentication(settings, { ...identity, mailFrom: 'a@other.example' });
      await assert.rejects(auth.write(Buffer.from(`${fields}From: a@signed.example\r\n\r\nbody\r\n`)), {
        code: 'DMARC_REJECT',
      });
      auth.abort();
    }
  });

  it('counts no signature for DMARC that leaves the end of the body unsigned (l=): anyone can append there', async () => {
    dns.set('_dmarc.signed.example', [{ type: 'TXT', text: 'v=DMARC1; p=reject' }]);
    try {
      const genuine = 'From: a@signed.example\r\nSubject: Hinweis\r\n\r\nIhr Newsletter.\r\n';
      const signed = await dkimKey.sign(genuine, 'signed.example', ['sel'], { bodyLength: 17 });
      assert.match(signed, /\bl=17\b/);
      const judge = async (message: string) => {
        // A stranger's address: SPF has nothing to pass, so DMARC stands on the signature alone.
        const auth = startMailAuthentication(settings, { ...identity, mailFrom: 'x@stranger.example' });
        await auth.write(Buffer.from(message));
        return auth.finish();
      };
      const whole = await judge(signed);
      assert.deepEqual(whole.dmarc, ['pass'], whole.field);
      assert.match(whole.field, /dkim=pass/);
      const appended = await judge(`${signed}Bitte ueberweisen Sie 9.800 EUR auf DE00 1234.\r\n`);
      assert.equal(appended.decision, 'DMARC_REJECT', appended.field);
      assert.doesNotMatch(appended.field, /dkim=pass/);
      assert.match(appended.field, /dkim=policy \(body length limit l= leaves the end of the body unsigned\)/);
    } finally {
      dns.set('_dmarc.signed.example', []);
    }
  });

  it('judges the From addresses of a group (RFC 6854) too: a group cannot hide a p=reject domain from DMARC', async () => {
    dns.set('_dmarc.signed.example', [{ type: 'TXT', text: 'v=DMARC1; p=reject' }]);
    try {
      for (const from of [
        'Bank: a@signed.example;',
        'x@stranger.example, Bank: a@signed.example;',
        '"Kundendienst" <x@stranger.example>, (c) Team : Anna <a@signed.example>, b@signed.example ;',
      ]) {
        // Unsigned, from a stranger's address: nothing can pass DMARC for signed.example.
        const auth = startMailAuthentication(settings, { ...identity, mailFrom: 'x@stranger.example' });
        await auth.write(Buffer.from(`From: ${from}\r\nSubject: x\r\n\r\nbody\r\n`));
        const result = await auth.finish();
        assert.equal(result.decision, 'DMARC_REJECT', `${from}: ${result.field}`);
        assert.match(result.field, /dmarc=fail[^;]*header\.from=signed\.example/);
      }
    } finally {
      dns.set('_dmarc.signed.example', []);
    }
  });

  it('judges a From domain in brackets or with trailing dots as the name a reader sees in it', async () => {
    dns.set('_dmarc.signed.example', [{ type: 'TXT', text: 'v=DMARC1; p=reject' }]);
    try {
      for (const from of ['a@[signed.example]', 'a@[ signed.example. ]', 'a@signed.example...']) {
        const auth = startMailAuthentication(settings, { ...identity, mailFrom: 'x@stranger.example' });
        await auth.write(Buffer.from(`From: ${from}\r\nSubject: x\r\n\r\nbody\r\n`));
        const result = await auth.finish();
        assert.equal(result.decision, 'DMARC_REJECT', `${from}: ${result.field}`);
      }
    } finally {
      dns.set('_dmarc.signed.example', []);
    }
  });

  // Trailing dots were looked for from each dot of a run: a From domain of 100,000 dots and a letter took 5 s.
  it('reads a From domain of nearly MAX_HEADER_BYTES dots in one pass', async () => {
    dns.set('_dmarc.signed.example', [{ type: 'TXT', text: 'v=DMARC1; p=reject' }]);
    try {
      const dots = '.'.repeat(MAX_HEADER_BYTES - 100);
      const auth = startMailAuthentication(settings, { ...identity, mailFrom: 'x@stranger.example' });
      await auth.write(Buffer.from(`From: a@signed.example${dots}x, b@signed.example\r\nSubject: x\r\n\r\nbody\r\n`));
      const result = await auth.finish();
      assert.equal(result.decision, 'DMARC_REJECT', result.field);
    } finally {
      dns.set('_dmarc.signed.example', []);
    }
  });

  it(`refuses a message with more than ${MAX_FROM_DOMAINS} From domains`, async () => {
    const auth = startMailAuthentication(settings, identity);
    const from = Array.from({ length: MAX_FROM_DOMAINS + 1 }, (_, i) => `a@d${i}.example`).join(', ');
    await auth.write(Buffer.from(`From: ${from}\r\n\r\nbody\r\n`));
    const result = await auth.finish();
    assert.equal(result.decision, 'DMARC_REJECT');
    assert.deepEqual(result.dmarc, ['permerror']);
  });

  it('writes the field in our name with every result on a line of its own, printable ASCII only', () => {
    const field = authenticationResultsField('smgw.test', [
      'spf=pass smtp.mailfrom=a@b.example',
      'dkim=pass header.d="evil\r\nX-Injected: 1"',
      'dmarc=none header.from=bü.example',
    ]);
    assert.equal(
      field,
      'Authentication-Results: smgw.test;\r\n\tspf=pass smtp.mailfrom=a@b.example;\r\n' +
        '\tdkim=pass header.d="evil X-Injected: 1";\r\n\tdmarc=none header.from=b?.example\r\n',
    );
  });
});
