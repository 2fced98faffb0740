// encrypt as a service with the real broker: encrypt and deliver as processes (the shared test gateway), the
// smarthost and the agencies' relay as SMTP sinks. openssl and gpg are the independent peers: they open what the
// gateway sends out, and what they encrypt to agency keys the gateway opens.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, newMessageId } from '@smgw/envelope';
import { connectMq, type Mq, next } from '@smgw/mq';
import { type SunkMessage, startTestGateway, type TestGateway, waitFor } from '@smgw/testing';
import { getTrace, recordMessage } from '@smgw/trace';
import { simpleParser } from 'mailparser';
import {
  createGpgHome,
  createTestPki,
  type GpgHome,
  INNER_ENTITY,
  insertAgencyKey,
  insertCertificate,
  insertPgpKey,
  insertTrustAnchor,
  type KeySpec,
  MASTER_KEY,
  outboundMail,
  type TestCa,
  type TestCertificate,
  type TestPki,
  testEnvelope,
  testLogger,
} from './fixtures.ts';

interface World {
  gateway: TestGateway;
  publisher: Mq;
  blobStore: BlobStore;
  /** Envelopes that reached smgw.mailbox (the portal stage comes later; the test takes them off the queue). */
  mailbox: Envelope[];
  close(): Promise<void>;
}

async function startWorld(): Promise<World> {
  const gateway = await startTestGateway({
    services: ['encrypt', 'deliver'],
    env: {
      SMGW_MASTER_KEY: MASTER_KEY.toString('base64'),
      SMGW_REVOCATION_MODE: 'off',
      SMGW_INTERNAL_DOMAINS: 'behoerde.example',
      SMGW_DELIVER_RETRY_LADDER: '200ms,200ms',
      SMGW_STAGE_RETRY_LADDER: '500ms,1s',
      SMGW_PREFETCH: '8',
    },
  });
  const publisher = await connectMq({
    url: gateway.vhost.url,
    logger: testLogger,
    connectionName: 'encrypt-test-publisher',
  });
  await publisher.declareTopology({ mailbox: [500] });
  const mailbox: Envelope[] = [];
  const mailboxConsumer = await publisher.consume(
    'mailbox',
    async (envelope) => {
      mailbox.push(envelope);
      return next();
    },
    { retryLadder: [500], prefetch: 4, onParked: async () => {} },
  );
  return {
    gateway,
    publisher,
    blobStore: createBlobStore(gateway.db.pool, {
      keyStore: createFolderKeyStore(gateway.keys),
      directory: gateway.blobDir,
    }),
    mailbox,
    async close() {
      await mailboxConsumer.drain();
      await publisher.close();
      await gateway.close();
    },
  };
}

/** Stores and records the message and publishes it to smgw.encrypt, as scan (outbound) or ingest (inbound) does. */
async function submit(world: World, raw: Buffer, overrides: Partial<Envelope> & Pick<Envelope, 'direction'>) {
  const id = overrides.id ?? newMessageId();
  const blob = await world.blobStore.put(Readable.from([raw]), { messageId: id });
  const envelope = testEnvelope(blob, overrides.direction, { ...overrides, id });
  await recordMessage(world.gateway.db.pool, envelope);
  await world.publisher.publish(envelope);
  return envelope;
}

/** The body of a sunk message after its header block. */
function bodyOf(message: SunkMessage): Buffer {
  const end = message.raw.indexOf('\r\n\r\n');
  return message.raw.subarray(end + 4);
}

function headerOf(message: SunkMessage): string {
  return message.raw.subarray(0, message.raw.indexOf('\r\n\r\n')).toString('latin1');
}

describe('encrypt with the broker, deliver, openssl and gpg', () => {
  let world: World;
  let pki: TestPki;
  let gpg: GpgHome;
  let ca: TestCa;
  const smimeRecipients = new Map<KeySpec, TestCertificate>();

  before(async () => {
    [world, pki, gpg] = await Promise.all([startWorld(), createTestPki(), createGpgHome()]);
    ca = await pki.ca('Encrypt-Test-CA');
    await insertTrustAnchor(world.gateway.db.pool, ca.der);
    for (const spec of ['rsa-2048', 'rsa-3072', 'rsa-4096', 'p-256', 'p-384'] as const) {
      const leaf = await pki.leaf(ca, `${spec}@buerger.example`, { key: spec });
      await insertCertificate(world.gateway.db.pool, leaf);
      smimeRecipients.set(spec, leaf);
    }
  });

  after(async () => {
    await world?.close();
    await gpg?.close();
    await pki?.remove();
  });

  it('sends each recipient of one message a form it can open: S/MIME, OpenPGP, or the portal', async () => {
    const pgpFingerprint = await gpg.generateKey('pgp@buerger.example');
    await insertPgpKey(world.gateway.db.pool, await gpg.exportPublic(pgpFingerprint), 'approved');
    await insertPgpKey(
      world.gateway.db.pool,
      await gpg.exportPublic(await gpg.generateKey('pending@buerger.example')),
      'pending',
    );
    const smimeAddresses = [...smimeRecipients.values()].map((c) => c.address);
    const recipients = [...smimeAddresses, 'pgp@buerger.example', 'pending@buerger.example', 'nobody@buerger.example'];
    const envelope = await submit(world, outboundMail(recipients, 'Gemischte Empfänger'), {
      direction: 'outbound',
      recipients,
    });

    const smime = await waitFor('the S/MIME copy at the smarthost', () =>
      world.gateway.smarthost.messages.find((m) => m.rcptTo.includes('rsa-2048@buerger.example')),
    );
    const pgp = await waitFor('the PGP copy at the smarthost', () =>
      world.gateway.smarthost.messages.find((m) => m.rcptTo.includes('pgp@buerger.example')),
    );
    const portal = await waitFor('the portal envelope in smgw.mailbox', () =>
      world.mailbox.find((e) => e.id === envelope.id),
    );

    assert.deepEqual([...smime.rcptTo].sort(), [...smimeAddresses].sort());
    assert.match(headerOf(smime), /Content-Type: application\/pkcs7-mime; smime-type=enveloped-data/i);
    for (const header of [
      'Received: from client.behoerde.example',
      'Subject: =?UTF-8?B?',
      'Message-ID: <bescheid-1@',
    ]) {
      assert.ok(headerOf(smime).includes(header), `outer header has ${header}`);
    }
    assert.ok(!smime.raw.includes(Buffer.from('X-Internal-Routing')), 'internal fields stay inside the gateway');
    assert.ok(!smime.raw.includes(Buffer.from('anbei Ihr Bescheid')), 'no plaintext outside');
    const smimeFile = await pki.file(`${envelope.id}.smime.eml`, smime.raw);
    for (const [spec, leaf] of smimeRecipients) {
      const opened = await pki.openssl([
        'cms',
        '-decrypt',
        '-in',
        smimeFile,
        '-recip',
        leaf.certPath,
        '-inkey',
        leaf.keyPath,
      ]);
      assert.ok(opened.equals(INNER_ENTITY), `openssl opens the copy with the ${spec} key to the original entity`);
    }

    assert.deepEqual(pgp.rcptTo, ['pgp@buerger.example']);
    assert.match(headerOf(pgp), /multipart\/encrypted; protocol="application\/pgp-encrypted"/);
    assert.match(headerOf(pgp), /^Received: from client.behoerde.example/);
    assert.ok(!pgp.raw.includes(Buffer.from('anbei Ihr Bescheid')), 'no plaintext outside');
    const armored = /-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/.exec(bodyOf(pgp).toString('latin1'));
    assert.ok(armored);
    const decrypted = await gpg.gpg(['--decrypt'], armored[0]);
    assert.equal(decrypted.code, 0, decrypted.stderr);
    assert.ok(decrypted.stdout.equals(INNER_ENTITY), 'gpg opens the copy to the original entity');

    assert.deepEqual([...portal.recipients].sort(), ['nobody@buerger.example', 'pending@buerger.example']);
    assert.equal(portal.verdicts.crypto?.status, 'portal');
    // The portal's copy is a blob of its own under the outer header; the original stays the received blob.
    assert.notEqual(portal.blob.ref, envelope.blob.ref);
    assert.equal(portal.receivedBlob?.ref, envelope.blob.ref);
    const portalCopy = await world.blobStore.readAll(portal.blob.ref);
    assert.ok(!portalCopy.includes(Buffer.from('X-Internal-Routing')), 'internal fields stay inside the gateway');
    assert.ok(portalCopy.includes(Buffer.from('anbei Ihr Bescheid')), 'the body, for the portal to show');

    const trace = await getTrace(world.gateway.db.pool, envelope.id);
    const events = trace?.events.filter((e) => e.stage === 'encrypt') ?? [];
    const byRecipient = new Map(events.map((e) => [e.recipient, e]));
    assert.equal(byRecipient.get('p-384@buerger.example')?.event, 'recipient.encrypted');
    assert.equal(byRecipient.get('pgp@buerger.example')?.event, 'recipient.encrypted');
    assert.equal(byRecipient.get('pending@buerger.example')?.code, 'ENCRYPT_PGP_KEY_PENDING');
    assert.equal(byRecipient.get('nobody@buerger.example')?.code, 'ENCRYPT_NO_KEY');
    // The copies' rows were committed with these events, and their files put in place: nothing left in tmp/.
    assert.deepEqual(readdirSync(join(world.gateway.blobDir as string, 'tmp')), []);
  });

  const unencryptable: Array<{
    what: string;
    code: string;
    status: string;
    mailFrom: string;
    header: string[];
    says: RegExp;
  }> = [
    {
      // No From, and an SMTPUTF8 envelope sender: the From the gateway would write cannot stand in an ASCII header.
      what: 'a From it would have to make of an SMTPUTF8 envelope sender',
      code: 'ENCRYPT_HEADER_INVALID',
      status: '5.6.0',
      mailFrom: 'müller@behoerde.example',
      header: ['Subject: Bescheid', 'Message-ID: <kopf-1@behoerde.example>'],
      says: /Der Kopfbereich der Nachricht \(Absender, Empfänger, Betreff\) kann so nicht verschlüsselt/,
    },
    {
      what: 'a header block over 1 MiB',
      code: 'ENCRYPT_HEADER_TOO_LARGE',
      status: '5.3.4',
      mailFrom: 'clerk@behoerde.example',
      header: [
        'From: Sachbearbeitung <clerk@behoerde.example>',
        'Subject: Bescheid',
        `X-Verteiler: ${Array.from({ length: 100_000 }, (_, i) => `stelle-${i}@behoerde.example`).join(',\r\n ')}`,
      ],
      says: /Der Kopfbereich der Nachricht ist größer als 1 MiB/,
    },
  ];
  for (const { what, code, status, mailFrom, header, says } of unencryptable) {
    it(`gives a message up at once whose own header can never be encrypted (${what}): the sender gets a DSN (${status}), nothing leaves`, async () => {
      const recipients = [...smimeRecipients.values()].slice(0, 2).map((c) => c.address);
      const raw = Buffer.concat([
        Buffer.from(
          [
            'Received: from client.behoerde.example by smgw.test; Mon, 02 Mar 2026 10:00:01 +0100',
            `To: ${recipients.join(', ')}`,
            ...header,
            'MIME-Version: 1.0',
            '',
          ].join('\r\n'),
        ),
        INNER_ENTITY,
      ]);
      const sentBefore = world.gateway.smarthost.messages.length;
      const envelope = await submit(world, raw, { direction: 'outbound', mailFrom, recipients });

      // Told within seconds, by deliver's DSN through the agencies' relay: not when the reaper gives it up days later.
      const dsn = await waitFor(
        'the DSN to the sender at the relay',
        () =>
          world.gateway.relay.messages.find((m) => m.raw.includes(Buffer.from(`X-SMGW-Message-Id: ${envelope.id}`))),
        { timeoutMs: 15_000 },
      );
      assert.deepEqual(dsn.rcptTo, [mailFrom]);
      const report = dsn.raw.toString('utf8');
      assert.match(report, /Content-Type: multipart\/report; report-type=delivery-status/i);
      for (const recipient of recipients)
        assert.ok(report.includes(`Final-Recipient: rfc822; ${recipient}`), recipient);
      assert.equal(report.match(/^Action: failed$/gm)?.length, recipients.length);
      assert.equal(
        report.match(new RegExp(`^Status: ${status.replaceAll('.', '\\.')}$`, 'gm'))?.length,
        recipients.length,
      );
      assert.match(report, new RegExp(`^Diagnostic-Code: X-SMGW; ${code}`, 'm'));
      assert.match((await simpleParser(dsn.raw)).text ?? '', says, 'the reason in words a clerk understands');
      assert.ok(!report.includes('anbei Ihr Bescheid'), 'the header block is quoted, never the body');

      const trace = await waitFor('every recipient bounced', async () => {
        const t = await getTrace(world.gateway.db.pool, envelope.id);
        return t?.recipients.every((r) => r.state === 'bounced') ? t : undefined;
      });
      assert.deepEqual(
        trace.events.filter((e) => e.stage === 'encrypt').map((e) => [e.event, e.code]),
        [['message.not-encryptable', code]],
      );
      assert.deepEqual(
        trace.events.filter((e) => e.event === 'recipient.bounced').map((e) => [e.recipient, e.code]),
        recipients.map((r) => [r, code]),
      );
      assert.ok(!trace.events.some((e) => e.event === 'envelope.parked'), 'given up, not parked');
      assert.deepEqual(world.gateway.smarthost.messages.slice(sentBefore), [], 'nothing left for the outside');
    });
  }

  /**
   * A header a client writes above its own encryption: ingest's Received on top, then what must not leave in clear
   * (free text, internal routing, hidden recipients), then the client's own fields (`head`).
   */
  const senderHeader = (head: string) =>
    [
      'Received: from client.behoerde.example by smgw.test; Mon, 02 Mar 2026 10:00:01 +0100',
      'X-Aktenzeichen: AZ 4711 Steuerstrafsache Mueller',
      'Comments: interner Vermerk GEHEIM',
      'Keywords: Steuerstrafsache',
      'Organization: Finanzamt Musterstadt, Steuerfahndung',
      'User-Agent: Mozilla Thunderbird (intern-pc-17)',
      'Received: from pc-17.intern.behoerde.example (10.1.2.3) by mail.behoerde.example',
      'Resent-Bcc: resent-versteckt@buerger.example',
      'Bcc: schon-versteckt@buerger.example',
      'Date: Mon, 02 Mar 2026 10:00:00 +0100',
      'Message-ID: <schon-1@behoerde.example>',
      'MIME-Version: 1.0 (Steuerfahndung Build 4711)',
      head.replace(/\r?\n$/, '').replace(/\r?\n/g, '\r\n'),
    ].join('\r\n');
  const LEAKS = /AZ 4711|GEHEIM|Steuer|intern|10\.1\.2\.3|versteckt|Thunderbird|^bcc:|^resent-/im;
  /** The outer fields a gateway copy has, and the Content-* fields of the form, in the order they leave. */
  const fieldNames = (message: SunkMessage) => headerOf(message).match(/^[^\s:]+(?=:)/gm);

  it('passes mail its sender encrypted with S/MIME on with the body as it is and only the outer header a gateway copy has', async () => {
    const leaf = smimeRecipients.get('rsa-2048') as TestCertificate;
    const plain = await pki.file('plain.eml', INNER_ENTITY);
    const encrypted = await pki.openssl([
      ...['cms', '-encrypt', '-in', plain, '-aes256', '-from', 'clerk@behoerde.example'],
      ...['-to', 'somebody@buerger.example', '-subject', 'schon verschluesselt', leaf.certPath],
    ]);
    const text = encrypted.toString('latin1').replace(/\r?\n/g, '\r\n');
    const end = text.indexOf('\r\n\r\n');
    const body = text.slice(end + 4);
    const raw = Buffer.from(`${senderHeader(text.slice(0, end))}\r\n\r\n${body}`, 'latin1');
    await submit(world, raw, {
      direction: 'outbound',
      recipients: ['somebody@buerger.example', 'schon-versteckt@buerger.example'],
    });
    const sent = await waitFor('the message at the smarthost', () =>
      world.gateway.smarthost.messages.find((m) => m.rcptTo.includes('somebody@buerger.example')),
    );
    assert.doesNotMatch(headerOf(sent), LEAKS);
    assert.deepEqual(fieldNames(sent), [
      ...['Received', 'Date', 'Message-ID', 'To', 'From', 'Subject', 'MIME-Version'],
      ...['Content-Type', 'Content-Transfer-Encoding', 'Content-Disposition', 'Content-Description'],
    ]);
    assert.match(headerOf(sent), /^Received: from client\.behoerde\.example by smgw\.test;/);
    assert.match(headerOf(sent), /^MIME-Version: 1\.0$/m);
    assert.match(
      headerOf(sent),
      /^Content-Type: application\/pkcs7-mime; smime-type=enveloped-data; name=smime\.p7m$/m,
    );
    assert.ok(bodyOf(sent).equals(Buffer.from(body, 'latin1')), 'the body byte for byte');
    const opened = await pki.openssl([
      ...['cms', '-decrypt', '-in', await pki.file('passed-through.eml', sent.raw)],
      ...['-recip', leaf.certPath, '-inkey', leaf.keyPath],
    ]);
    assert.ok(opened.equals(INNER_ENTITY), 'openssl opens what left');
  });

  it('passes mail its sender encrypted with PGP/MIME on with the body as it is (but its boundary) and only the outer header a gateway copy has', async () => {
    const fingerprint = await gpg.generateKey('pgp-passed@buerger.example');
    const armored = await gpg.gpg(['--armor', '--encrypt', '--recipient', fingerprint], INNER_ENTITY);
    assert.equal(armored.code, 0, armored.stderr);
    // As Thunderbird writes it.
    const head =
      'From: clerk@behoerde.example\r\nTo: pgp-passed@buerger.example\r\nSubject: schon verschluesselt (PGP)';
    const contentType =
      'Content-Type: multipart/encrypted;\r\n protocol="application/pgp-encrypted";\r\n boundary="------------enig4711"';
    const body =
      'This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n--------------enig4711\r\n' +
      'Content-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification\r\n\r\n' +
      'Version: 1\r\n\r\n--------------enig4711\r\n' +
      'Content-Type: application/octet-stream; name="encrypted.asc"\r\n' +
      'Content-Description: OpenPGP encrypted message\r\nContent-Disposition: inline; filename="encrypted.asc"\r\n\r\n' +
      `${armored.stdout.toString('latin1').replace(/\r?\n/g, '\r\n')}\r\n--------------enig4711--\r\n`;
    const raw = Buffer.from(`${senderHeader(`${head}\r\n${contentType}`)}\r\n\r\n${body}`, 'latin1');
    await submit(world, raw, { direction: 'outbound', recipients: ['pgp-passed@buerger.example'] });
    const sent = await waitFor('the message at the smarthost', () =>
      world.gateway.smarthost.messages.find((m) => m.rcptTo.includes('pgp-passed@buerger.example')),
    );
    assert.doesNotMatch(headerOf(sent), LEAKS);
    assert.deepEqual(fieldNames(sent), [
      ...['Received', 'Date', 'Message-ID', 'From', 'To', 'Subject', 'MIME-Version', 'Content-Type'],
    ]);
    const ours =
      /^Content-Type: multipart\/encrypted; protocol="application\/pgp-encrypted"; boundary="(smgw-pgp-[0-9a-f]+)"$/m.exec(
        headerOf(sent),
      )?.[1];
    assert.ok(ours, "under a boundary of the gateway's");
    const renamed = body.replaceAll('--------------enig4711', `--${ours}`);
    assert.ok(bodyOf(sent).equals(Buffer.from(renamed, 'latin1')), 'the body byte for byte but for the delimiters');
    const armor = /-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/.exec(bodyOf(sent).toString('latin1'));
    assert.ok(armor);
    const decrypted = await gpg.gpg(['--decrypt'], armor[0]);
    assert.equal(decrypted.code, 0, decrypted.stderr);
    assert.ok(decrypted.stdout.equals(INNER_ENTITY), 'gpg opens what left');
  });

  it("passes PGP/MIME on under a boundary of the gateway's: the sender's is free text every delimiter repeats", async () => {
    const fingerprint = await gpg.generateKey('pgp-boundary@buerger.example');
    const armored = await gpg.gpg(['--armor', '--encrypt', '--recipient', fingerprint], INNER_ENTITY);
    const armor = armored.stdout.toString('latin1').replace(/\r?\n/g, '\r\n');
    const boundary = 'AZ 4711 Steuerstrafsache Mueller, Termin 12.3. um 10';
    const raw = Buffer.from(
      'From: clerk@behoerde.example\r\nTo: pgp-boundary@buerger.example\r\nSubject: Grenze\r\nMIME-Version: 1.0\r\n' +
        `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"\r\n\r\n` +
        `--${boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n` +
        `--${boundary}  \r\nContent-Type: application/octet-stream\r\n\r\n${armor}\r\n--${boundary}--\r\n`,
      'latin1',
    );
    const envelope = await submit(world, raw, { direction: 'outbound', recipients: ['pgp-boundary@buerger.example'] });
    const sent = await waitFor('the message at the smarthost', () =>
      world.gateway.smarthost.messages.find((m) => m.rcptTo.includes('pgp-boundary@buerger.example')),
    );
    assert.ok(!sent.raw.includes(Buffer.from('Steuerstrafsache')), 'the boundary does not leave');
    const events = (await getTrace(world.gateway.db.pool, envelope.id))?.events ?? [];
    assert.ok(
      events.some((e) => e.event === 'message.already-encrypted'),
      'passed on, not encrypted again',
    );
    const ours =
      /^Content-Type: multipart\/encrypted; protocol="application\/pgp-encrypted"; boundary="([^"]+)"$/m.exec(
        headerOf(sent),
      )?.[1];
    assert.ok(ours);
    const expected =
      `--${ours}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n` +
      `--${ours}\r\nContent-Type: application/octet-stream\r\n\r\n${armor}\r\n--${ours}--\r\n`;
    assert.equal(bodyOf(sent).toString('latin1'), expected, 'only the delimiter lines changed');
    const decrypted = await gpg.gpg(['--decrypt'], armor);
    assert.ok(decrypted.stdout.equals(INNER_ENTITY));
  });

  it('encrypts PGP/MIME with free text in a part header again, as it would plain mail', async () => {
    const fingerprint = await gpg.generateKey('pgp-again@buerger.example');
    await insertPgpKey(world.gateway.db.pool, await gpg.exportPublic(fingerprint), 'approved');
    const armored = await gpg.gpg(['--armor', '--encrypt', '--recipient', fingerprint], INNER_ENTITY);
    const raw = Buffer.from(
      'From: clerk@behoerde.example\r\nTo: pgp-again@buerger.example\r\nSubject: Teiltext\r\nMIME-Version: 1.0\r\n' +
        'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"\r\n\r\n' +
        '--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n' +
        '--b\r\nContent-Type: application/octet-stream\r\nContent-Description: AZ 4711 Steuerstrafsache Mueller\r\n\r\n' +
        `${armored.stdout.toString('latin1').replace(/\r?\n/g, '\r\n')}\r\n--b--\r\n`,
      'latin1',
    );
    const envelope = await submit(world, raw, { direction: 'outbound', recipients: ['pgp-again@buerger.example'] });
    const sent = await waitFor('the message at the smarthost', () =>
      world.gateway.smarthost.messages.find((m) => m.rcptTo.includes('pgp-again@buerger.example')),
    );
    assert.ok(!sent.raw.includes(Buffer.from('Steuerstrafsache')), 'the part header is inside the encryption');
    const armor = /-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/.exec(bodyOf(sent).toString('latin1'));
    assert.ok(armor);
    const outer = await gpg.gpg(['--decrypt'], armor[0]);
    assert.equal(outer.code, 0, outer.stderr);
    assert.ok(outer.stdout.includes(Buffer.from('Content-Description: AZ 4711')), "the sender's PGP/MIME inside");
    const events = (await getTrace(world.gateway.db.pool, envelope.id))?.events ?? [];
    assert.ok(events.some((e) => e.event === 'recipient.encrypted' && e.recipient === 'pgp-again@buerger.example'));
  });

  it('gives each recipient not named in To or Cc a copy of its own that names only it, and lets no Bcc field out', async () => {
    const [rsa2048, rsa3072, p256] = (['rsa-2048', 'rsa-3072', 'p-256'] as const).map(
      (spec) => smimeRecipients.get(spec) as TestCertificate,
    );
    assert.ok(rsa2048 && rsa3072 && p256);
    for (const address of ['pgp-to@buerger.example', 'pgp-bcc@buerger.example']) {
      await insertPgpKey(world.gateway.db.pool, await gpg.exportPublic(await gpg.generateKey(address)), 'approved');
    }
    const raw = Buffer.concat([
      Buffer.from(
        [
          'From: Sachbearbeitung <clerk@behoerde.example>',
          `To: ${rsa2048.address}, "PGP" <PGP-To@buerger.example>`,
          `Cc: ${rsa3072.address}`,
          `Bcc: ${p256.address},`,
          ' pgp-bcc@buerger.example',
          'Subject: Bescheid mit Blindkopie',
          'Message-ID: <bcc-1@behoerde.example>',
          'MIME-Version: 1.0',
          '',
        ].join('\r\n'),
      ),
      INNER_ENTITY,
    ]);
    const recipients = [
      rsa2048.address,
      p256.address,
      'pgp-bcc@buerger.example',
      rsa3072.address,
      'pgp-to@buerger.example',
    ];
    await submit(world, raw, { direction: 'outbound', recipients });
    const copyFor = (recipient: string) =>
      waitFor(`the copy for ${recipient} at the smarthost`, () =>
        world.gateway.smarthost.messages.find(
          (m) => m.rcptTo.includes(recipient) && m.raw.includes(Buffer.from('<bcc-1@behoerde.example>')),
        ),
      );
    const named = await copyFor(rsa2048.address);
    const smimeBcc = await copyFor(p256.address);
    const pgpNamed = await copyFor('pgp-to@buerger.example');
    const pgpBcc = await copyFor('pgp-bcc@buerger.example');

    assert.deepEqual([...named.rcptTo].sort(), [rsa2048.address, rsa3072.address].sort());
    assert.deepEqual(smimeBcc.rcptTo, [p256.address]);
    assert.deepEqual(pgpNamed.rcptTo, ['pgp-to@buerger.example']);
    assert.deepEqual(pgpBcc.rcptTo, ['pgp-bcc@buerger.example']);

    /** The RecipientInfos of an S/MIME copy, as openssl prints the CMS structure. */
    const recipientInfos = async (message: SunkMessage) => {
      const file = await pki.file(`bcc-${Math.random()}.eml`, message.raw);
      const printed = (await pki.openssl(['cms', '-cmsout', '-print', '-in', file])).toString('latin1');
      return printed.match(/d\.(ktri|kari|kekri|pwri|ori):/g) ?? [];
    };
    assert.equal((await recipientInfos(named)).length, 2, 'the shared copy names the To and the Cc recipient');
    assert.deepEqual(await recipientInfos(smimeBcc), ['d.kari:'], 'the Bcc copy names only its EC recipient');
    const opened = await pki.openssl([
      ...['cms', '-decrypt', '-in', await pki.file('bcc-open.eml', smimeBcc.raw)],
      ...['-recip', p256.certPath, '-inkey', p256.keyPath],
    ]);
    assert.ok(opened.equals(INNER_ENTITY));

    /** The key ids of an OpenPGP copy's PKESK packets (gpg --list-packets without decrypting). */
    const pkeskKeyIds = async (message: SunkMessage) => {
      const armored = /-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/.exec(
        message.raw.toString('latin1'),
      );
      assert.ok(armored);
      const listed = await gpg.gpg(['--list-only', '--list-packets'], armored[0]);
      return [...`${listed.stdout.toString()}${listed.stderr}`.matchAll(/:pubkey enc packet:.*keyid ([0-9A-F]+)/g)].map(
        (m) => m[1],
      );
    };
    const bccKeyIds = await pkeskKeyIds(pgpBcc);
    assert.equal(bccKeyIds.length, 1, 'the OpenPGP Bcc copy has one PKESK');
    const namedKeyIds = await pkeskKeyIds(pgpNamed);
    assert.equal(namedKeyIds.length, 1);
    assert.notDeepEqual(bccKeyIds, namedKeyIds);

    for (const copy of [named, smimeBcc, pgpNamed, pgpBcc]) {
      const header = headerOf(copy);
      assert.doesNotMatch(header, /^bcc:/im, 'no Bcc field outside');
      assert.match(header, /^To: rsa-2048@buerger\.example, "PGP" <PGP-To@buerger\.example>$/m);
    }
    for (const copy of [named, pgpNamed]) {
      assert.ok(!copy.raw.includes(Buffer.from(p256.address)), 'a named recipient never sees the Bcc recipients');
      assert.ok(!copy.raw.includes(Buffer.from('pgp-bcc@buerger.example')));
    }
  });

  it('takes the Bcc field out of the readable header of mail that passes through already encrypted', async () => {
    const leaf = smimeRecipients.get('rsa-2048') as TestCertificate;
    const plain = await pki.file('plain-bcc.eml', INNER_ENTITY);
    const encrypted = await pki.openssl([
      ...['cms', '-encrypt', '-in', plain, '-aes256', '-from', 'clerk@behoerde.example'],
      ...['-to', 'offen@buerger.example', '-subject', 'schon verschluesselt, mit Bcc', leaf.certPath],
    ]);
    const withoutBcc = Buffer.from(encrypted.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
    const raw = Buffer.from(
      withoutBcc.toString('latin1').replace('\r\n', '\r\nBcc: versteckt@buerger.example\r\n'),
      'latin1',
    );
    await submit(world, raw, {
      direction: 'outbound',
      recipients: ['offen@buerger.example', 'versteckt@buerger.example'],
    });
    const sent = await waitFor('the message at the smarthost', () =>
      world.gateway.smarthost.messages.find((m) => m.rcptTo.includes('versteckt@buerger.example')),
    );
    assert.doesNotMatch(headerOf(sent), /^bcc:|versteckt/im);
    assert.ok(bodyOf(sent).equals(withoutBcc.subarray(withoutBcc.indexOf('\r\n\r\n') + 4)), 'the body byte for byte');
  });

  it('does not trust an encrypted label on a plaintext body: such mail is handled like plain mail', async () => {
    const raw = Buffer.from(
      'From: clerk@behoerde.example\r\nTo: getarnt@buerger.example\r\nSubject: getarnt\r\nMIME-Version: 1.0\r\n' +
        'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n' +
        'Content-Transfer-Encoding: base64\r\n\r\n' +
        `${Buffer.from('vertraulicher Klartext').toString('base64')}\r\n`,
    );
    const envelope = await submit(world, raw, { direction: 'outbound', recipients: ['getarnt@buerger.example'] });
    const toPortal = await waitFor('the message in smgw.mailbox', () =>
      world.mailbox.find((e) => e.id === envelope.id),
    );
    assert.equal(toPortal.verdicts.crypto?.status, 'portal');
    assert.ok(!world.gateway.smarthost.messages.some((m) => m.rcptTo.includes('getarnt@buerger.example')));
  });

  it('does not trust real CMS first bytes followed by plaintext, nor PGP/MIME with text beside the armor', async () => {
    const leaf = smimeRecipients.get('rsa-2048') as TestCertificate;
    const plain = await pki.file('plain-fake.eml', INNER_ENTITY);
    const real = (await pki.openssl(['cms', '-encrypt', '-in', plain, '-aes256', leaf.certPath])).toString('latin1');
    const [head, body] = real.split(/\r?\n\r?\n/) as [string, string];
    const firstLine = body.split(/\r?\n/)[0] as string;
    const fakeSmime = Buffer.from(
      `${head.replace(/\r?\n/g, '\r\n')}\r\nTo: fake-smime@buerger.example\r\n\r\n${firstLine}\r\n` +
        `${Buffer.from('Geheimer Klartext hinter echtem CMS-Anfang').toString('base64')}\r\n`,
      'latin1',
    );
    const fakePgp = Buffer.from(
      'From: clerk@behoerde.example\r\nTo: fake-pgp@buerger.example\r\nMIME-Version: 1.0\r\n' +
        'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"\r\n\r\n' +
        '--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n' +
        '--b\r\nContent-Type: application/octet-stream\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\n' +
        'hQEMA1234567890=\r\n-----END PGP MESSAGE-----\r\nGeheimer Klartext neben der Panzerung\r\n--b--\r\n',
    );
    for (const [raw, recipient] of [
      [fakeSmime, 'fake-smime@buerger.example'],
      [fakePgp, 'fake-pgp@buerger.example'],
    ] as const) {
      const envelope = await submit(world, raw, { direction: 'outbound', recipients: [recipient] });
      const toPortal = await waitFor(`${recipient} in smgw.mailbox`, () =>
        world.mailbox.find((e) => e.id === envelope.id),
      );
      assert.equal(toPortal.verdicts.crypto?.status, 'portal', recipient);
      assert.ok(!world.gateway.smarthost.messages.some((m) => m.rcptTo.includes(recipient)), recipient);
    }
  });

  describe('inbound', () => {
    let agencyRsa: TestCertificate;
    let agencyEc: TestCertificate;
    let agencyPgp: string;

    before(async () => {
      agencyRsa = await pki.leaf(ca, 'poststelle@behoerde.example', { key: 'rsa-3072' });
      await insertAgencyKey(world.gateway.db.pool, 'poststelle@behoerde.example', {
        kind: 'smime',
        certificate: agencyRsa,
      });
      agencyEc = await pki.leaf(ca, 'ec-stelle@behoerde.example', { key: 'p-256' });
      await insertAgencyKey(world.gateway.db.pool, 'ec-stelle@behoerde.example', {
        kind: 'smime',
        certificate: agencyEc,
      });
      agencyPgp = await gpg.generateKey('pgp-stelle@behoerde.example');
      await insertAgencyKey(world.gateway.db.pool, 'pgp-stelle@behoerde.example', {
        kind: 'pgp',
        fingerprint: agencyPgp,
        publicArmored: await gpg.exportPublic(agencyPgp),
        secretArmored: await gpg.exportSecret(agencyPgp),
      });
    });

    async function smimeMail(
      certPath: string,
      to: string,
      extra: string[] = [],
      entity = INNER_ENTITY,
    ): Promise<Buffer> {
      const plain = await pki.file(`inner-${to}-${extra.length}-${entity.length}.eml`, entity);
      const out = await pki.openssl([
        'cms',
        '-encrypt',
        '-in',
        plain,
        '-from',
        'absender@extern.example',
        '-to',
        to,
        '-subject',
        'Antrag',
        '-recip',
        certPath,
        ...extra,
      ]);
      return Buffer.from(out.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
    }

    async function expectDecrypted(raw: Buffer, to: string, form: 'smime' | 'pgp'): Promise<void> {
      const envelope = await submit(world, raw, { direction: 'inbound', recipients: [to] });
      const arrived = await waitFor(`the decrypted message for ${to} at the relay`, () =>
        world.gateway.relay.messages.find((m) => m.rcptTo.includes(to)),
      );
      world.gateway.relay.messages.splice(world.gateway.relay.messages.indexOf(arrived), 1);
      const text = arrived.raw.toString('utf8');
      assert.match(text, new RegExp(`^X-SMGW-Decrypted: ${form}\\r$`, 'm'));
      assert.ok(arrived.raw.includes(INNER_ENTITY), 'the original entity follows the outer header');
      assert.ok(!/pkcs7-mime|multipart\/encrypted/i.test(text));
      const trace = await getTrace(world.gateway.db.pool, envelope.id);
      assert.ok(trace?.events.some((e) => e.event === 'message.decrypted'));
    }

    it('opens what openssl cms -encrypt sends with its defaults (RSA PKCS#1 v1.5)', async () => {
      await expectDecrypted(await smimeMail(agencyRsa.certPath, agencyRsa.address), agencyRsa.address, 'smime');
    });

    it('takes fields in our name out of the decrypted entity too: encryption carries no forgery past ingest', async () => {
      const forged = Buffer.concat([
        Buffer.from('X-SMGW-Signature: TOTAL_PASSED; level=QES\r\nAuthentication-Results: smgw.test; dmarc=pass\r\n'),
        INNER_ENTITY,
      ]);
      const raw = await smimeMail(agencyRsa.certPath, agencyRsa.address, [], forged);
      await submit(world, raw, { direction: 'inbound', recipients: [agencyRsa.address] });
      const arrived = await waitFor('the decrypted message with a forged inner header at the relay', () =>
        world.gateway.relay.messages.find((m) => m.raw.includes(Buffer.from('X-SMGW-Decrypted: smime'))),
      );
      world.gateway.relay.messages.splice(world.gateway.relay.messages.indexOf(arrived), 1);
      const text = arrived.raw.toString('latin1');
      assert.ok(arrived.raw.includes(INNER_ENTITY), 'the rest of the entity follows the outer header');
      assert.doesNotMatch(text, /^X-SMGW-Signature:/im);
      assert.doesNotMatch(text, /^Authentication-Results:.*dmarc=pass/im);
    });

    it('keeps the From and Sender that ingest checked: a decrypted entity cannot add an agency author', async () => {
      const forged = Buffer.concat([
        Buffer.from('From : chefin@behoerde.example\r\nsender: chefin@behoerde.example\r\n'),
        INNER_ENTITY,
      ]);
      const raw = await smimeMail(agencyRsa.certPath, agencyRsa.address, ['-aes256'], forged);
      await submit(world, raw, { direction: 'inbound', recipients: [agencyRsa.address] });
      const arrived = await waitFor('the decrypted message with an inner From at the relay', () =>
        world.gateway.relay.messages.find((m) => m.raw.includes(Buffer.from('X-SMGW-Decrypted: smime'))),
      );
      world.gateway.relay.messages.splice(world.gateway.relay.messages.indexOf(arrived), 1);
      const text = arrived.raw.toString('latin1');
      assert.ok(arrived.raw.includes(INNER_ENTITY), 'the rest of the entity follows the outer header');
      const authors = (text.match(/^(From|Sender)[ \t]*:.*$/gim) ?? []).map((field) => field.trimEnd());
      assert.deepEqual(authors, ['From: absender@extern.example']);
    });

    it('makes every lone CR of a decrypted entity a line end first: fields hidden behind one are seen and taken out', async () => {
      // A lone CR hid the fields after it from the line filter, and deliver's DATA stream made it a line end: the
      // agency got them as fields of their own. -binary: openssl keeps the entity's bytes as they are.
      const hidden = Buffer.from(
        'Content-Type: text/plain; charset=utf-8\r' +
          'X-SMGW-Signature: TOTAL_PASSED; level=QES; signatures=1\r' +
          'Authentication-Results: smgw.test; dkim=pass; dmarc=pass header.from=behoerde.example\r' +
          'From: Die Amtsleitung <chefin@behoerde.example>\r\n\r\nLONE-CR-MARKER\rzweite Zeile\r\n',
        'latin1',
      );
      const raw = await smimeMail(agencyRsa.certPath, agencyRsa.address, ['-binary'], hidden);
      await submit(world, raw, { direction: 'inbound', recipients: [agencyRsa.address] });
      const arrived = await waitFor('the decrypted message with lone CRs at the relay', () =>
        world.gateway.relay.messages.find((m) => m.raw.includes(Buffer.from('LONE-CR-MARKER'))),
      );
      world.gateway.relay.messages.splice(world.gateway.relay.messages.indexOf(arrived), 1);
      const text = arrived.raw.toString('latin1');
      assert.doesNotMatch(text, /\r(?!\n)/, 'no lone CR left');
      assert.doesNotMatch(text, /^X-SMGW-Signature:/im);
      assert.doesNotMatch(text, /^Authentication-Results:.*dmarc=pass/im);
      const authors = (text.match(/^(From|Sender)[ \t]*:.*$/gim) ?? []).map((field) => field.trimEnd());
      assert.deepEqual(authors, ['From: absender@extern.example']);
      assert.match(text, /^Content-Type: text\/plain; charset=utf-8\r\n/m);
      assert.match(text, /LONE-CR-MARKER\r\nzweite Zeile\r\n/);
    });

    it("drops folded lines before the decrypted entity's first field: they continued X-SMGW-Decrypted", async () => {
      // The entity's header block joins the outer one right after our own field, so a line starting with white
      // space at its top folded into X-SMGW-Decrypted, and the stranger wrote text of its choice into our field.
      const folded = Buffer.concat([
        Buffer.from(
          '\tsignature=TOTAL_PASSED; level=QES; verified-by=smgw.test\r\n X-SMGW-Signature: TOTAL_PASSED\r\n',
        ),
        INNER_ENTITY,
      ]);
      const raw = await smimeMail(agencyRsa.certPath, agencyRsa.address, ['-binary'], folded);
      await submit(world, raw, { direction: 'inbound', recipients: [agencyRsa.address] });
      const arrived = await waitFor('the decrypted message with folded lines on top at the relay', () =>
        world.gateway.relay.messages.find((m) => m.raw.includes(Buffer.from('X-SMGW-Decrypted: smime'))),
      );
      world.gateway.relay.messages.splice(world.gateway.relay.messages.indexOf(arrived), 1);
      const text = arrived.raw.toString('latin1');
      assert.match(text, /^X-SMGW-Decrypted: smime\r\n(?![ \t])/m, 'our field ends where we wrote it');
      assert.doesNotMatch(text, /TOTAL_PASSED/);
      assert.ok(arrived.raw.includes(INNER_ENTITY), 'the entity follows the outer header');
    });

    it('opens a second S/MIME layer to the same agency key: scan sees the content, not ciphertext', async () => {
      // Encrypted twice to the agency's key, the content reached the agency still encrypted: clamd saw ciphertext and
      // passed it, and the agency's client, which opens both layers, showed content nothing had scanned.
      const inner = Buffer.from(await smimeMail(agencyRsa.certPath, agencyRsa.address));
      const raw = await smimeMail(agencyRsa.certPath, agencyRsa.address, ['-aes256'], inner);
      await expectDecrypted(raw, agencyRsa.address, 'smime');
    });

    it('opens RSA-OAEP key transport with AES-256', async () => {
      const raw = await smimeMail(agencyRsa.certPath, agencyRsa.address, [
        '-aes256',
        '-keyopt',
        'rsa_padding_mode:oaep',
      ]);
      await expectDecrypted(raw, agencyRsa.address, 'smime');
    });

    it('opens mail to an EC (P-256) agency certificate', async () => {
      await expectDecrypted(
        await smimeMail(agencyEc.certPath, agencyEc.address, ['-aes256']),
        agencyEc.address,
        'smime',
      );
    });

    it('opens what gpg --encrypt sends as PGP/MIME', async () => {
      const encrypted = await gpg.gpg(['--armor', '--encrypt', '--recipient', agencyPgp], INNER_ENTITY);
      assert.equal(encrypted.code, 0, encrypted.stderr);
      const boundary = 'pgp-test-boundary';
      const raw = Buffer.from(
        'From: absender@extern.example\r\nTo: pgp-stelle@behoerde.example\r\nSubject: Antrag\r\nMIME-Version: 1.0\r\n' +
          `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"\r\n\r\n` +
          `--${boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n` +
          `--${boundary}\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n` +
          `${encrypted.stdout.toString('latin1').replace(/\r?\n/g, '\r\n')}\r\n--${boundary}--\r\n`,
        'latin1',
      );
      await expectDecrypted(raw, 'pgp-stelle@behoerde.example', 'pgp');
    });

    it('opens a second PGP/MIME layer to the same agency key', async () => {
      const pgpMime = (armored: Buffer, head: string) =>
        Buffer.from(
          `${head}MIME-Version: 1.0\r\n` +
            'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"\r\n\r\n' +
            '--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n' +
            '--b\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n' +
            `${armored.toString('latin1').replace(/\r?\n/g, '\r\n')}\r\n--b--\r\n`,
          'latin1',
        );
      const inner = await gpg.gpg(['--armor', '--encrypt', '--recipient', agencyPgp], INNER_ENTITY);
      assert.equal(inner.code, 0, inner.stderr);
      const outer = await gpg.gpg(['--armor', '--encrypt', '--recipient', agencyPgp], pgpMime(inner.stdout, ''));
      assert.equal(outer.code, 0, outer.stderr);
      const head = 'From: absender@extern.example\r\nTo: pgp-stelle@behoerde.example\r\nSubject: Antrag\r\n';
      await expectDecrypted(pgpMime(outer.stdout, head), 'pgp-stelle@behoerde.example', 'pgp');
    });

    it('opens inline PGP (a text/plain body that is one armored message), but leaves a quoted block in other text alone', async () => {
      const encrypted = await gpg.gpg(
        ['--armor', '--encrypt', '--recipient', agencyPgp],
        'Geheimer Inhalt, inline.\r\n',
      );
      assert.equal(encrypted.code, 0, encrypted.stderr);
      const armored = encrypted.stdout.toString('latin1').replace(/\r?\n/g, '\r\n');
      const head = 'From: absender@extern.example\r\nTo: pgp-stelle@behoerde.example\r\nSubject: inline\r\n';
      await submit(
        world,
        Buffer.from(`${head}Content-Type: text/plain; charset=us-ascii\r\n\r\n${armored}`, 'latin1'),
        {
          direction: 'inbound',
          recipients: ['pgp-stelle@behoerde.example'],
        },
      );
      const opened = await waitFor('the decrypted inline message at the relay', () =>
        world.gateway.relay.messages.find((m) => /^Subject: inline\r$/m.test(m.raw.toString('latin1'))),
      );
      world.gateway.relay.messages.splice(world.gateway.relay.messages.indexOf(opened), 1);
      assert.match(opened.raw.toString('latin1'), /^X-SMGW-Decrypted: pgp\r$/m);
      assert.ok(!opened.raw.includes(Buffer.from('BEGIN PGP MESSAGE')));

      const quoted = Buffer.from(`${head.replace('inline', 'zitiert')}\r\nSie schrieben:\r\n${armored}`, 'latin1');
      await submit(world, quoted, { direction: 'inbound', recipients: ['pgp-stelle@behoerde.example'] });
      const asIs = await waitFor('the quoting message at the relay', () =>
        world.gateway.relay.messages.find((m) => /^Subject: zitiert\r$/m.test(m.raw.toString('latin1'))),
      );
      world.gateway.relay.messages.splice(world.gateway.relay.messages.indexOf(asIs), 1);
      assert.ok(asIs.raw.equals(quoted), 'passed on byte for byte');
    });

    it('harvests an OpenPGP key offered in inbound mail as pending, and does not use it before approval', async () => {
      const offered = await gpg.generateKey('anbieter@extern.example');
      const armored = await gpg.exportPublic(offered);
      const boundary = 'key-offer-boundary';
      const raw = Buffer.from(
        'From: anbieter@extern.example\r\nTo: poststelle@behoerde.example\r\nSubject: mein Schluessel\r\n' +
          `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n` +
          `--${boundary}\r\nContent-Type: text/plain\r\n\r\nAnbei mein Schluessel.\r\n` +
          `--${boundary}\r\nContent-Type: application/pgp-keys; name="key.asc"\r\n` +
          'Content-Disposition: attachment; filename="key.asc"\r\n\r\n' +
          `${armored.replace(/\r?\n/g, '\r\n')}\r\n--${boundary}--\r\n`,
        'latin1',
      );
      const envelope = await submit(world, raw, { direction: 'inbound', recipients: ['poststelle@behoerde.example'] });
      const arrived = await waitFor('the plain message at the relay', () =>
        world.gateway.relay.messages.find((m) => m.raw.includes(Buffer.from('mein Schluessel'))),
      );
      world.gateway.relay.messages.splice(world.gateway.relay.messages.indexOf(arrived), 1);
      assert.ok(arrived.raw.equals(raw), 'plain mail goes on byte for byte');
      const { rows } = await world.gateway.db.pool.query(
        'select state, source, addresses from pgp_keys where fingerprint = $1',
        [offered],
      );
      assert.deepEqual(rows, [{ state: 'pending', source: 'harvested', addresses: ['anbieter@extern.example'] }]);
      const trace = await getTrace(world.gateway.db.pool, envelope.id);
      assert.ok(trace?.events.some((e) => e.event === 'pgp-key.harvested'));

      const reply = await submit(world, outboundMail(['anbieter@extern.example']), {
        direction: 'outbound',
        recipients: ['anbieter@extern.example'],
      });
      const toPortal = await waitFor('the reply in smgw.mailbox', () => world.mailbox.find((e) => e.id === reply.id));
      assert.deepEqual(toPortal.recipients, ['anbieter@extern.example']);
      assert.ok(!world.gateway.smarthost.messages.some((m) => m.rcptTo.includes('anbieter@extern.example')));
    });

    it('still passes plain text that reaches it on unchanged (envelopes queued before ingest sent plain mail past it)', async () => {
      const raw = Buffer.from(
        'From: absender@extern.example\r\nTo: poststelle@behoerde.example\r\nSubject: alte Route\r\n' +
          'Content-Type: text/plain; charset=utf-8\r\n\r\nSchlicht.\r\n',
      );
      await submit(world, raw, { direction: 'inbound', recipients: ['poststelle@behoerde.example'] });
      const plain = await waitFor('the plain message at the relay', () =>
        world.gateway.relay.messages.find((m) => m.raw.includes(Buffer.from('Subject: alte Route'))),
      );
      world.gateway.relay.messages.splice(world.gateway.relay.messages.indexOf(plain), 1);
      assert.ok(plain.raw.equals(raw), 'byte for byte');

      // Our field written by the sender is still taken out here (ingest removes it too).
      const forged = Buffer.concat([Buffer.from('X-SMGW-Decrypted: pgp\r\n'), raw]).toString('latin1');
      await submit(world, Buffer.from(forged.replace('alte Route', 'alte Route, gefaelscht'), 'latin1'), {
        direction: 'inbound',
        recipients: ['poststelle@behoerde.example'],
      });
      const cleaned = await waitFor('the forged plain message at the relay', () =>
        world.gateway.relay.messages.find((m) => m.raw.includes(Buffer.from('gefaelscht'))),
      );
      world.gateway.relay.messages.splice(world.gateway.relay.messages.indexOf(cleaned), 1);
      assert.ok(!cleaned.raw.includes(Buffer.from('X-SMGW-Decrypted')));
      assert.ok(cleaned.raw.toString('latin1').startsWith('From: absender@extern.example\r\n'));
    });

    it('delivers mail encrypted to a key it does not hold as it is, with a header saying why', async () => {
      const stranger = await pki.leaf(ca, 'fremd@behoerde.example');
      const raw = await smimeMail(stranger.certPath, 'poststelle@behoerde.example', ['-aes256']);
      const spoofed = Buffer.concat([Buffer.from('X-SMGW-Decrypted: smime\r\n'), raw]);
      const envelope = await submit(world, spoofed, {
        direction: 'inbound',
        recipients: ['poststelle@behoerde.example'],
      });
      const arrived = await waitFor('the undecrypted message at the relay', () =>
        world.gateway.relay.messages.find((m) => m.raw.includes(Buffer.from('X-SMGW-Decryption: failed'))),
      );
      assert.ok(
        arrived.raw.toString('latin1').startsWith('X-SMGW-Decryption: failed; reason=SMIME_NO_MATCHING_RECIPIENT\r\n'),
      );
      assert.ok(!arrived.raw.includes(Buffer.from('X-SMGW-Decrypted')), 'a sender cannot claim our header');
      assert.ok(arrived.raw.includes(raw.subarray(raw.indexOf('\r\n\r\n'))), 'the encrypted body is unchanged');
      const trace = await getTrace(world.gateway.db.pool, envelope.id);
      assert.ok(
        trace?.events.some((e) => e.event === 'message.not-decrypted' && e.code === 'SMIME_NO_MATCHING_RECIPIENT'),
      );
    });
  });
});
