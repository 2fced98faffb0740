// The whole gateway as real processes (ingest → encrypt → scan → deliver): inbound mail encrypted by openssl or gpg to
// an agency key arrives decrypted at the agencies' relay, and what was hidden inside the encryption is scanned. Plain
// mail skips encrypt (ingest decides with encrypt's own predicate, issue 12); everything encrypt has work with
// (encrypted, keys or a signature to harvest) and everything unsure still passes it and is handled as before.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertQueued, type SunkMessage, type TestGateway, waitFor } from '@smgw/testing';
import { getTrace } from '@smgw/trace';
import nodemailer from 'nodemailer';
import {
  createGpgHome,
  type GpgHome,
  INNER_ENTITY,
  insertAgencyKey,
  insertTrustAnchor,
  opensslEncrypted,
  startDecryptingGateway,
  type TestCa,
  type TestCertificate,
  type TestPki,
} from './fixtures.ts';

const PGP_AGENCY = 'pgp-stelle@behoerde.example';

describe('inbound decryption in the running gateway', () => {
  let gw: TestGateway;
  let pki: TestPki;
  let ca: TestCa;
  let agency: TestCertificate;
  let gpg: GpgHome;
  let agencyPgp: string;

  before(async () => {
    // Revocation off: signer certificates of the test PKI are harvested without a CRL at hand.
    [{ gw, pki, ca, agency }, gpg] = await Promise.all([
      startDecryptingGateway('stelle@behoerde.example', 'Gateway-Test-CA', { SMGW_REVOCATION_MODE: 'off' }),
      createGpgHome(),
    ]);
    await insertTrustAnchor(gw.db.pool, ca.der);
    agencyPgp = await gpg.generateKey(PGP_AGENCY);
    await insertAgencyKey(
      gw.db.pool,
      PGP_AGENCY,
      {
        kind: 'pgp',
        fingerprint: agencyPgp,
        publicArmored: await gpg.exportPublic(agencyPgp),
        secretArmored: await gpg.exportSecret(agencyPgp),
      },
      gw.masterKey,
    );
  });
  after(async () => {
    await gw?.close();
    await gpg?.close();
    await pki?.remove();
  });

  async function send(raw: Buffer, to = 'stelle@behoerde.example', from = 'buerger@example.org'): Promise<string> {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.inboundPort, ignoreTLS: true });
    try {
      const info = await transport.sendMail({ envelope: { from, to: [to] }, raw });
      return assertQueued(info.response);
    } finally {
      transport.close();
    }
  }

  async function sendEncrypted(inner: Buffer, subject: string): Promise<string> {
    const encrypted = await opensslEncrypted(pki, agency, inner, {
      to: 'stelle@behoerde.example',
      subject,
      file: subject,
    });
    return send(encrypted);
  }

  /** The message at the relay whose bytes include `marker`, taken off the sink. */
  async function arrived(marker: string): Promise<SunkMessage> {
    const message = await waitFor(`the message with ${marker} at the relay`, () =>
      gw.relay.messages.find((m) => m.raw.includes(Buffer.from(marker, 'latin1'))),
    );
    gw.relay.messages.splice(gw.relay.messages.indexOf(message), 1);
    return message;
  }

  /** Whether `message` ends with `original`: passed on unchanged behind the fields the gateway puts on top. */
  function endsWith(message: SunkMessage, original: Buffer): boolean {
    return message.raw.subarray(message.raw.length - original.length).equals(original);
  }

  /** The route ingest chose (message.received) and every `stage:event` of the message's trace. */
  async function journey(id: string) {
    const trace = await getTrace(gw.db.pool, id);
    const received = trace?.events.find((e) => e.event === 'message.received')?.data as {
      envelopes: { itinerary: string[] }[];
      encryptStage: { skipped: boolean; reasons: string[] };
    };
    return {
      itinerary: received.envelopes[0]?.itinerary,
      encryptStage: received.encryptStage,
      events: trace?.events.map((e) => `${e.stage}:${e.event}`) ?? [],
    };
  }

  async function gpgArmored(text: string | Buffer): Promise<string> {
    const encrypted = await gpg.gpg(['--armor', '--encrypt', '--recipient', agencyPgp], text);
    assert.equal(encrypted.code, 0, encrypted.stderr);
    return encrypted.stdout.toString('latin1').replace(/\r?\n/g, '\r\n');
  }

  function pgpMime(armored: string, subject: string, contentTypeField?: string): Buffer {
    const boundary = 'pgp-gateway-boundary';
    const contentType =
      contentTypeField ??
      `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"`;
    return Buffer.from(
      `From: buerger@example.org\r\nTo: ${PGP_AGENCY}\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\n${contentType}\r\n\r\n` +
        `--${boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n` +
        `--${boundary}\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n` +
        `${armored}\r\n--${boundary}--\r\n`,
      'latin1',
    );
  }

  it('delivers what openssl encrypted to an agency key decrypted, after scanning it', async () => {
    const inner = Buffer.from('Content-Type: text/plain; charset=utf-8\r\n\r\nMein Antrag auf Akteneinsicht.\r\n');
    const id = await sendEncrypted(inner, 'Antrag');
    const message = await arrived('Akteneinsicht');
    const text = message.raw.toString('utf8');
    assert.match(text, /^X-SMGW-Decrypted: smime\r$/m);
    assert.match(text, /^Subject: Antrag\r$/m);
    const { encryptStage, events } = await journey(id);
    assert.deepEqual(encryptStage, { skipped: false, reasons: ['smime-encrypted'] });
    assert.ok(events.includes('encrypt:message.decrypted'), events.join(', '));
    assert.ok(events.includes('scan:message.scanned'), events.join(', '));
  });

  it('quarantines a virus that came encrypted: it is scanned after decryption', async () => {
    // EICAR, assembled at run time so that this file is not itself a "virus".
    const eicar = `X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-${'STANDARD-ANTIVIRUS-TEST-FILE'}!$H+H*`;
    const inner = Buffer.from(
      'Content-Type: application/octet-stream; name="rechnung.com"\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
        `${Buffer.from(eicar).toString('base64')}\r\n`,
    );
    const id = await sendEncrypted(inner, 'Rechnung');
    await waitFor('the message quarantined', async () => {
      const trace = await getTrace(gw.db.pool, id);
      return trace?.recipients.every((r) => r.state === 'quarantined') && trace.recipients.length > 0;
    });
    assert.ok(!gw.relay.messages.some((m) => m.raw.includes(Buffer.from('EICAR'))));
  });

  describe('which inbound mail passes encrypt', () => {
    it('sends plain text past encrypt: scanned and delivered unchanged, without our fields a sender wrote', async () => {
      const original = Buffer.from(
        'From: buerger@example.org\r\nTo: stelle@behoerde.example\r\nSubject: Schlicht\r\n' +
          'Content-Type: text/plain; charset=utf-8\r\n\r\nEin schlichter Antrag.\r\n',
      );
      const forged = Buffer.concat([Buffer.from('X-SMGW-Decrypted: smime\r\n'), original]);
      const id = await send(forged);
      const message = await arrived('Ein schlichter Antrag.');
      assert.ok(endsWith(message, original), 'the message as sent, without the forged field');
      assert.doesNotMatch(message.raw.toString('latin1'), /X-SMGW-Decrypt/i);
      const { itinerary, encryptStage, events } = await journey(id);
      // Small and clean: ingest scanned it too (scan-at-ingest.ts), and no recipient verifies signatures.
      assert.deepEqual(itinerary, ['deliver']);
      assert.deepEqual(encryptStage, { skipped: true, reasons: [] });
      assert.ok(events.includes('ingest:message.scanned'), events.join(', '));
      assert.ok(!events.some((e) => e.startsWith('encrypt:')), events.join(', '));
    });

    it('opens what gpg sends as PGP/MIME, also under a folded Content-Type or one with space before its colon', async () => {
      for (const [subject, field] of [
        ['PGP-MIME', undefined],
        [
          'PGP-MIME gefaltet',
          'Content-Type:\r\n\tmultipart/encrypted;\r\n protocol="application/pgp-encrypted";\r\n boundary="pgp-gateway-boundary"',
        ],
        // obs-syntax (RFC 5322 §4.5.3): a mail client reads it as the Content-Type, and so does @smgw/mime.
        [
          'PGP-MIME Leerzeichen',
          'Content-Type : multipart/encrypted; protocol="application/pgp-encrypted"; boundary="pgp-gateway-boundary"',
        ],
      ] as const) {
        const id = await send(pgpMime(await gpgArmored(INNER_ENTITY), subject, field), PGP_AGENCY);
        const message = await arrived(`Subject: ${subject}\r\n`);
        assert.match(message.raw.toString('latin1'), /^X-SMGW-Decrypted: pgp\r$/m, subject);
        assert.ok(message.raw.includes(INNER_ENTITY), subject);
        const { encryptStage, events } = await journey(id);
        assert.deepEqual(encryptStage.reasons, ['pgp-encrypted', 'may-offer-pgp-keys'], subject);
        assert.ok(events.includes('encrypt:message.decrypted'), events.join(', '));
      }
    });

    it('opens inline PGP; an armored block a hostile sender hides after 64 KiB of text passes encrypt unopened', async () => {
      const armored = await gpgArmored('Geheimer Inhalt, inline.\r\n');
      const head = `From: buerger@example.org\r\nTo: ${PGP_AGENCY}\r\n`;
      const inline = Buffer.from(`${head}Subject: inline\r\nContent-Type: text/plain\r\n\r\n${armored}`, 'latin1');
      const inlineId = await send(inline, PGP_AGENCY);
      const opened = await arrived('Subject: inline\r\n');
      assert.match(opened.raw.toString('latin1'), /^X-SMGW-Decrypted: pgp\r$/m);
      // The decrypted text comes as a base64 text/plain entity (decryptPgpMime), so any bytes survive.
      assert.ok(opened.raw.includes(Buffer.from(Buffer.from('Geheimer Inhalt, inline.\r\n').toString('base64'))));
      assert.ok(!opened.raw.includes(Buffer.from('BEGIN PGP MESSAGE')));
      assert.deepEqual((await journey(inlineId)).encryptStage.reasons, ['inline-pgp']);

      const padding = `${'Sehr geehrte Damen und Herren, '.repeat(2)}\r\n`.repeat(1200);
      const hidden = Buffer.from(`${head}Subject: versteckt\r\n\r\n${padding}${armored}`, 'latin1');
      const hiddenId = await send(hidden, PGP_AGENCY);
      const asIs = await arrived('Subject: versteckt\r\n');
      assert.ok(endsWith(asIs, hidden), 'passed on as it is');
      const { itinerary, encryptStage } = await journey(hiddenId);
      // Encrypt would leave it as it is (inline PGP is a whole body of one block), so ingest routes it past encrypt
      // (and, as it is clean and small, past scan).
      assert.deepEqual(itinerary, ['deliver']);
      assert.deepEqual(encryptStage.reasons, []);
    });

    it('harvests OpenPGP keys offered in a multipart message and in an Autocrypt header, as pending', async () => {
      const attached = await gpg.generateKey('anhang@example.org');
      const boundary = 'key-offer-boundary';
      const withAttachment = Buffer.from(
        'From: anhang@example.org\r\nTo: stelle@behoerde.example\r\nSubject: Schluessel im Anhang\r\n' +
          `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n` +
          `--${boundary}\r\nContent-Type: text/plain\r\n\r\nAnbei mein Schluessel.\r\n` +
          `--${boundary}\r\nContent-Type: application/pgp-keys; name="key.asc"\r\n\r\n` +
          `${(await gpg.exportPublic(attached)).replace(/\r?\n/g, '\r\n')}\r\n--${boundary}--\r\n`,
        'latin1',
      );
      const offered = await gpg.generateKey('autocrypt@example.org');
      const keydata = (await gpg.gpg(['--export', offered])).stdout
        .toString('base64')
        .replace(/(.{76})(?=.)/g, '$1\r\n ');
      const withAutocrypt = Buffer.from(
        `From: autocrypt@example.org\r\nTo: stelle@behoerde.example\r\nSubject: Autocrypt\r\n` +
          `Autocrypt: addr=autocrypt@example.org; keydata=\r\n ${keydata}\r\n\r\nHallo.\r\n`,
        'latin1',
      );
      for (const [raw, from, fingerprint, subject, reasons] of [
        [withAttachment, 'anhang@example.org', attached, 'Schluessel im Anhang', ['may-offer-pgp-keys']],
        [withAutocrypt, 'autocrypt@example.org', offered, 'Autocrypt', ['may-offer-pgp-keys']],
      ] as const) {
        const id = await send(raw, 'stelle@behoerde.example', from);
        const message = await arrived(`Subject: ${subject}\r\n`);
        assert.ok(endsWith(message, raw), `${subject}: plain mail goes on byte for byte`);
        const { rows } = await gw.db.pool.query('select state, source from pgp_keys where fingerprint = $1', [
          fingerprint,
        ]);
        assert.deepEqual(rows, [{ state: 'pending', source: 'harvested' }], subject);
        const { encryptStage, events } = await journey(id);
        assert.deepEqual(encryptStage.reasons, reasons, subject);
        assert.ok(events.includes('encrypt:pgp-key.harvested'), events.join(', '));
      }
    });

    it('harvests the certificate of signed S/MIME, detached (multipart/signed) and opaque (pkcs7-mime signed-data)', async () => {
      const entity = await pki.file('signed-entity.eml', 'Content-Type: text/plain\r\n\r\nSigniert.\r\n');
      for (const [form, extra, reasons] of [
        ['detached', [], ['may-offer-pgp-keys', 'may-sign-smime']],
        ['opaque', ['-nodetach'], ['may-sign-smime']],
      ] as const) {
        const sender = `${form}@example.org`;
        const signer = await pki.leaf(ca, sender);
        const signed = await pki.openssl([
          'cms',
          '-sign',
          '-in',
          entity,
          '-signer',
          signer.certPath,
          '-inkey',
          signer.keyPath,
          ...extra,
        ]);
        const raw = Buffer.concat([
          Buffer.from(`From: ${sender}\r\nTo: stelle@behoerde.example\r\nSubject: signiert ${form}\r\n`),
          Buffer.from(signed.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1'),
        ]);
        const id = await send(raw, 'stelle@behoerde.example', sender);
        const message = await arrived(`Subject: signiert ${form}\r\n`);
        assert.ok(endsWith(message, raw), `${form}: passed on byte for byte`);
        const { encryptStage, events } = await journey(id);
        assert.deepEqual(encryptStage.reasons, reasons, form);
        assert.ok(events.includes('encrypt:certificate.harvested'), `${form}: ${events.join(', ')}`);
      }
    });
  });
});
