// Which mail from the internet skips the encrypt stage (issue 12): the head read along while the message is stored,
// judged by @smgw/crypto's inboundCryptoWork, and whatever is unsure kept on the old route through encrypt. Unit tests
// of the reading and judging, then the MX listener against the real PostgreSQL, RabbitMQ and Redis.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { BODY_HEAD_BYTES } from '@smgw/crypto/inbound-crypto-work';
import type { Envelope } from '@smgw/envelope';
import { findHeaderEnd, MAX_HEADER_BYTES } from '@smgw/mime';
import { assertQueued } from '@smgw/testing';
import { getTrace } from '@smgw/trace';
import { encryptHopReasons, type MessageHead, withMessageHead } from '../src/inbound-crypto-route.ts';
import type { RunningIngest } from '../src/service.ts';
import { createTestWorld, type TestWorld } from './harness.ts';
import { SmtpTestClient } from './smtp-client.ts';

const RECEIVED = 'Received: from mx.example.org ([192.0.2.1])\r\n\tby smgw.test with ESMTP id X; Mon, 2 Mar 2026\r\n';
const ARMORED = '-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA0xyz\r\n=abcd\r\n-----END PGP MESSAGE-----\r\n';

/** What withMessageHead passes on and tells, for a message cut into `chunks`. */
async function readAlong(chunks: Buffer[]): Promise<{ passed: Buffer; heads: MessageHead[] }> {
  const heads: MessageHead[] = [];
  const passed: Buffer[] = [];
  for await (const chunk of withMessageHead(
    (async function* () {
      yield* chunks;
    })(),
    (head) => heads.push(head),
  )) {
    passed.push(Buffer.from(chunk));
  }
  return { passed: Buffer.concat(passed), heads };
}

/** Cuts `bytes` into chunks of `size`. */
function chunked(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return chunks;
}

async function reasonsFor(message: string | Buffer): Promise<string[]> {
  const bytes = Buffer.isBuffer(message) ? message : Buffer.from(message, 'latin1');
  const { heads } = await readAlong([Buffer.from(RECEIVED), bytes]);
  return encryptHopReasons(heads[0]);
}

describe('reading the head of a message while it is stored', () => {
  it('passes every byte on unchanged and tells the header block and the first 64 KiB of the body, once', async () => {
    const body = Buffer.alloc(BODY_HEAD_BYTES + 100, 'b');
    const message = Buffer.concat([Buffer.from(`${RECEIVED}Subject: x\r\n\r\n`), body]);
    for (const size of [1, 7, 1000, 65536, message.length]) {
      const { passed, heads } = await readAlong(chunked(message, size));
      assert.ok(passed.equals(message), `chunks of ${size}`);
      assert.equal(heads.length, 1, `chunks of ${size}`);
      assert.equal(heads[0]?.headerBlock?.toString('latin1'), `${RECEIVED}Subject: x\r\n`);
      assert.ok(heads[0]?.bodyHead.equals(body.subarray(0, BODY_HEAD_BYTES)));
    }
  });

  it('finds the end of the header block where encrypt finds it, wherever the chunks are cut', async () => {
    const messages = [
      'A: 1\r\nB: 2\r\n\r\nbody\r\n',
      '\r\nbody without header\r\n',
      '\nbody\n',
      'A: 1\n\nbody\n',
      'A: 1\n\r\nbody\r\n',
      'A: 1\r\n\r\r\nnot blank\r\n\r\nbody\r\n',
      'A: 1\r\n \r\nB: 2\r\n\r\n',
    ];
    for (const text of messages) {
      const message = Buffer.from(text, 'latin1');
      const end = findHeaderEnd(message);
      assert.ok(end, text);
      const cuts = [...Array(message.length + 1).keys()].map((at) => [message.subarray(0, at), message.subarray(at)]);
      for (const chunks of [...cuts, chunked(message, 1)]) {
        const { heads } = await readAlong(chunks);
        assert.deepEqual(heads[0]?.headerBlock, message.subarray(0, end.headerLength), JSON.stringify(text));
        assert.deepEqual(heads[0]?.bodyHead, message.subarray(end.bodyStart), JSON.stringify(text));
      }
    }
  });

  it('tells a short message whole when it ends', async () => {
    const { heads } = await readAlong([Buffer.from(`${RECEIVED}Subject: x\r\n\r\n`), Buffer.from('kurz\r\n')]);
    assert.equal(heads[0]?.bodyHead.toString(), 'kurz\r\n');
  });

  it('holds no more than the header limit when the header block never ends, and calls that unread', async () => {
    const endless = Buffer.alloc(MAX_HEADER_BYTES * 2, 'x');
    const { heads } = await readAlong(chunked(endless, 64 * 1024));
    assert.equal(heads.length, 1);
    assert.equal(heads[0]?.headerBlock, undefined);
    assert.deepEqual(encryptHopReasons(heads[0]), ['header-unread']);
    const { heads: allHeader } = await readAlong([Buffer.from(`${RECEIVED}Subject: no blank line\r\n`)]);
    assert.deepEqual(encryptHopReasons(allHeader[0]), ['header-unread']);
    assert.deepEqual(encryptHopReasons(undefined), ['header-unread']);
  });
});

describe('whether a message from the internet needs the encrypt stage', () => {
  const cases: Array<[string, string, string[]]> = [
    ['plain text', 'Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGuten Tag.\r\n', []],
    ['text without MIME fields', 'Subject: x\r\n\r\nGuten Tag.\r\n', []],
    ['HTML alone', 'Content-Type: text/html\r\n\r\n<p>x</p>\r\n', []],
    [
      'S/MIME enveloped-data',
      'Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\r\nMIAG\r\n',
      ['smime-encrypted'],
    ],
    [
      'PGP/MIME',
      'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=b\r\n\r\n--b\r\n',
      ['pgp-encrypted', 'may-offer-pgp-keys'],
    ],
    ['inline PGP', `Content-Type: text/plain\r\n\r\n${ARMORED}`, ['inline-pgp']],
    ['multipart (may carry a key)', 'Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n', ['may-offer-pgp-keys']],
    ['an Autocrypt header', 'Autocrypt: addr=a@example.org; keydata=mQEN\r\n\r\nx\r\n', ['may-offer-pgp-keys']],
    [
      'opaque signed S/MIME',
      'Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n\r\nMIAG\r\n',
      ['may-sign-smime'],
    ],
    // Odd header blocks: not judged, they keep the route through encrypt.
    ['a line that is no field', 'Subject: x\r\nthis is no field\r\n\r\nx\r\n', ['header-lines-not-fields']],
    // obs-syntax (RFC 5322 §4.5.3): read as the Content-Type a mail client sees, so judged by what it names.
    [
      'white space before the colon of a Content-Type',
      'Content-Type : multipart/encrypted; boundary=b\r\n\r\n--b\r\n',
      ['pgp-encrypted', 'may-offer-pgp-keys'],
    ],
    [
      'two Content-Type fields',
      'Content-Type: text/plain\r\nContent-Type: text/html\r\n\r\nx\r\n',
      ['content-field-repeated'],
    ],
    [
      'two Content-Transfer-Encoding fields',
      'Content-Transfer-Encoding: base64\r\nContent-Transfer-Encoding: 7bit\r\n\r\nx\r\n',
      ['content-field-repeated'],
    ],
    [
      'a comment before the media type',
      'Content-Type: (x) multipart/encrypted; boundary=b\r\n\r\nx\r\n',
      ['content-type-unclear'],
    ],
    ['an empty Content-Type', 'Content-Type:\r\n\r\nx\r\n', ['content-type-unclear']],
    ['a media type folded apart', 'Content-Type: text/\r\n plain\r\n\r\nx\r\n', ['content-type-unclear']],
    ['an encoded-word as media type', 'Content-Type: =?utf-8?q?text/plain?=\r\n\r\nx\r\n', ['content-type-unclear']],
    [
      'S/MIME without a smime-type encrypt reads',
      'Content-Type: application/x-pkcs7-mime; name=smime.p7m\r\n\r\nMIAG\r\n',
      ['crypto-media-type'],
    ],
    ['a PGP signature alone', 'Content-Type: application/pgp-signature\r\n\r\nx\r\n', ['crypto-media-type']],
  ];
  for (const [name, message, reasons] of cases) {
    it(`${reasons.length ? 'sends' : 'lets'} ${name} ${reasons.length ? `to encrypt (${reasons.join(', ')})` : 'skip encrypt'}`, async () => {
      assert.deepEqual(await reasonsFor(message), reasons);
    });
  }

  it('keeps a folded Content-Type that reads plainly once unfolded: the encrypted form it names is seen', async () => {
    const folded = 'Content-Type:\r\n\tapplication/pkcs7-mime;\r\n smime-type=enveloped-data\r\n\r\nMIAG\r\n';
    assert.deepEqual(await reasonsFor(folded), ['smime-encrypted']);
  });

  it('routes a text body with an armored block after 64 KiB past encrypt, which would leave it as it is', async () => {
    const hostile = `Subject: x\r\n\r\n${'a'.repeat(BODY_HEAD_BYTES)}\r\n${ARMORED}`;
    assert.deepEqual(await reasonsFor(hostile), []);
  });
});

describe('the MX listener routing plain mail past encrypt', () => {
  let world: TestWorld;
  let ingest: RunningIngest;

  before(async () => {
    world = await createTestWorld();
    ({ ingest } = await world.start({ SMGW_MAX_MESSAGE_BYTES: String(1024 * 1024) }));
  });
  after(() => world.close());

  async function send(body: string): Promise<string> {
    const { client } = await SmtpTestClient.open(ingest.inboundPort);
    await client.command('EHLO sender.example');
    const reply = await client.sendMail({ from: 'a@sender.example', to: ['x@behoerde.example'], body });
    await client.quit();
    return assertQueued(reply.final?.text);
  }

  async function receivedData(id: string) {
    const event = (await getTrace(world.db.pool, id))?.events.find((e) => e.event === 'message.received');
    return event?.data as {
      envelopes: { direction: string; recipients: number; itinerary: string[] }[];
      encryptStage: { skipped: boolean; reasons: string[] };
    };
  }

  async function only(queue: 'smgw.encrypt' | 'smgw.scan', id: string): Promise<Envelope> {
    const other = queue === 'smgw.encrypt' ? 'smgw.scan' : 'smgw.encrypt';
    assert.deepEqual(await world.takeEnvelopes(other), [], `nothing in ${other}`);
    const envelopes = await world.takeEnvelopes(queue);
    assert.deepEqual(
      envelopes.map((e) => e.id),
      [id],
      `the envelope in ${queue}`,
    );
    return envelopes[0] as Envelope;
  }

  it('queues plain mail for scan with the crypto verdict plain, and says so in the trace', async () => {
    const id = await send('From: a@sender.example\r\nSubject: Antrag\r\nContent-Type: text/plain\r\n\r\nHallo.\r\n');
    const envelope = await only('smgw.scan', id);
    assert.deepEqual(envelope.itinerary, ['scan', 'verify', 'deliver']);
    assert.equal(envelope.hop, 0);
    assert.equal(envelope.verdicts.crypto?.status, 'plain');
    assert.equal(envelope.verdicts.crypto?.by, 'ingest');
    assert.deepEqual(await receivedData(id), {
      listener: 'inbound',
      size: envelope.blob.size,
      blob: envelope.blob.ref,
      envelopes: [{ direction: 'inbound', recipients: 1, itinerary: ['scan', 'verify', 'deliver'] }],
      encryptStage: { skipped: true, reasons: [] },
      auth: { spf: 'none', dkim: ['none'], dmarc: ['none'] },
    });
  });

  const throughEncrypt: Array<[string, string, string[]]> = [
    [
      'S/MIME enveloped-data',
      'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n' +
        'Content-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQAx\r\n',
      ['smime-encrypted'],
    ],
    ['inline PGP', `Subject: inline\r\n\r\n${ARMORED}`, ['inline-pgp']],
    [
      'multipart/signed',
      'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n',
      ['may-offer-pgp-keys', 'may-sign-smime'],
    ],
    ['a body of no header', 'nur Text ohne Kopf\r\n', ['header-unread']],
  ];
  for (const [name, body, reasons] of throughEncrypt) {
    it(`queues ${name} for encrypt, as before, and says why`, async () => {
      const id = await send(body);
      const envelope = await only('smgw.encrypt', id);
      assert.deepEqual(envelope.itinerary, ['encrypt', 'scan', 'verify', 'deliver']);
      assert.equal(envelope.verdicts.crypto, undefined, 'encrypt decides');
      const data = await receivedData(id);
      assert.deepEqual(data.encryptStage, { skipped: false, reasons });
      assert.deepEqual(data.envelopes[0]?.itinerary, ['encrypt', 'scan', 'verify', 'deliver']);
    });
  }

  it('lets no sender claim our decryption fields on mail that skips encrypt: ingest removed them', async () => {
    const id = await send(
      'X-SMGW-Decrypted: smime\r\nX-SMGW-Decryption: failed; reason=ENCRYPT_NO_AGENCY_KEY\r\n' +
        'x-smgw-decrypted  : pgp\r\nSubject: gefaelscht\r\n\r\nIch war verschluesselt.\r\n',
    );
    const envelope = await only('smgw.scan', id);
    const stored = await createBlobStore(world.db.pool, { keyStore: createFolderKeyStore(world.db.keys) }).readAll(
      envelope.blob.ref,
    );
    assert.doesNotMatch(stored.toString('latin1'), /x-smgw-/i);
    assert.match(stored.toString('latin1'), /\r\nSubject: gefaelscht\r\n\r\nIch war verschluesselt\.\r\n$/);
  });
});
