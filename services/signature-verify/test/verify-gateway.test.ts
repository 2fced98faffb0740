// signature-verify in the running gateway (ingest → encrypt → scan → signature-verify → deliver, admin), real
// PostgreSQL, RabbitMQ and clamd. openssl signs (cms -sign) and checks what arrives (cms -verify on the extracted
// original); xmllint checks the ETSI XML against the schema; pdftotext reads the PDF. Revocation is required, by CRL
// from a server of the test on loopback (SMGW_REVOCATION_ALLOW), so revoked and unreachable are real.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { freePort, type SunkMessage, startTestGateway, type TestGateway, waitFor } from '@smgw/testing';
import { getTrace } from '@smgw/trace';
import nodemailer from 'nodemailer';
import { assertSchemaValid } from './etsi-schema.ts';
import { type Signer, TestPki } from './test-pki.ts';

const ENABLED = 'poststelle@behoerde.example';
const ALSO_ENABLED = 'vergabe@behoerde.example';
const NOT_ENABLED = 'info@behoerde.example';
const SENDER = 'anna.schmidt@partner.example';

interface Part {
  header: string;
  body: Buffer;
}

function splitAtHeader(raw: Buffer): Part {
  const end = raw.indexOf('\r\n\r\n');
  return { header: raw.subarray(0, end + 2).toString('latin1'), body: raw.subarray(end + 4) };
}

/** The parts of a multipart body, byte for byte (the CRLF before each delimiter belongs to the delimiter). */
function partsOf(message: Buffer): Part[] {
  const { header, body } = splitAtHeader(message);
  const boundary = /boundary="([^"]+)"/.exec(header)?.[1];
  assert.ok(boundary, 'a multipart message');
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const parts: Part[] = [];
  let at = body.indexOf(delimiter);
  while (at !== -1) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    parts.push(splitAtHeader(body.subarray(start + 2, next)));
    at = next;
  }
  return parts;
}

/** The gateway's message id, from ingest's Received field. */
function gatewayId(message: SunkMessage): string {
  const id = /\bid ([0-9A-Z]{26})\b/.exec(message.raw.toString('latin1'))?.[1];
  assert.ok(id, 'the gateway message id in the Received field');
  return id;
}

function fieldValues(header: string, name: string): string[] {
  return [...header.matchAll(new RegExp(`^${name}:[ \\t]*(.*)\\r$`, 'gim'))].map((m) => m[1] as string);
}

describe('signature verification in the running gateway', () => {
  let gw: TestGateway;
  let pki: TestPki;
  let crlServer: Server;
  let anna: Signer;
  let revoked: Signer;
  let unreachable: Signer;
  let crl: Buffer;

  async function admin(method: string, path: string, body: unknown, type = 'application/json') {
    const res = await fetch(`http://127.0.0.1:${gw.adminPort}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${gw.adminToken}`, 'content-type': type },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${await res.clone().text()}`);
    return res.json() as Promise<Record<string, unknown>>;
  }

  before(async () => {
    pki = await TestPki.create('Verify-Service-Test-CA');
    crlServer = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/pkix-crl' });
      res.end(crl);
    });
    await new Promise<void>((resolve) => crlServer.listen(0, '127.0.0.1', resolve));
    const crlUrl = `http://127.0.0.1:${(crlServer.address() as AddressInfo).port}/ca.crl`;
    anna = await pki.signer('anna', SENDER, crlUrl);
    revoked = await pki.signer('revoked', 'revoked@partner.example', crlUrl);
    unreachable = await pki.signer('unreachable', 'far@partner.example', `http://127.0.0.1:${await freePort()}/ca.crl`);
    await pki.revoke(revoked);
    crl = await pki.crl();

    gw = await startTestGateway({
      services: ['ingest', 'encrypt', 'scan', 'signature-verify', 'deliver', 'admin'],
      env: {
        SMGW_INTERNAL_DOMAINS: 'behoerde.example',
        SMGW_REVOCATION_MODE: 'require',
        SMGW_REVOCATION_ALLOW: '127.0.0.1/32',
        SMGW_STAGE_RETRY_LADDER: '300ms,300ms,300ms,300ms',
        SMGW_VERIFY_TRY_LATER_ATTEMPTS: '2',
      },
    });
    await admin('POST', '/trust-anchors', await readFile(pki.ca.certificatePath, 'utf8'), 'application/x-pem-file');
    const agency = await admin('POST', '/agencies', { name: 'Finanzamt Test', domains: ['behoerde.example'] });
    for (const [address, verifySignatures] of [
      [ENABLED, true],
      [ALSO_ENABLED, true],
      [NOT_ENABLED, false],
    ] as const) {
      await admin('POST', `/agencies/${agency.id}/addresses`, { address, verifySignatures });
    }
  });

  after(async () => {
    await gw?.close();
    crlServer?.close();
    await pki?.remove();
  });

  async function send(raw: Buffer, to: string[]): Promise<void> {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.inboundPort, ignoreTLS: true });
    try {
      await transport.sendMail({ envelope: { from: SENDER, to }, raw });
    } finally {
      transport.close();
    }
  }

  function arrivedFor(recipient: string, marker: string): Promise<SunkMessage> {
    return waitFor(
      `the message "${marker}" for ${recipient} at the relay`,
      () => gw.relay.messages.find((m) => m.rcptTo.includes(recipient) && m.raw.includes(Buffer.from(marker))),
      { timeoutMs: 60_000 },
    );
  }

  function signedMail(subject: string, signer: Signer, from = SENDER, extra: string[] = []): Promise<Buffer> {
    const entity = Buffer.from(
      `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSehr geehrte Damen und Herren,\r\nanbei mein Antrag (${subject}).\r\n`,
    );
    return pki.signedMail(
      [
        `From: Anna Schmidt <${from}>`,
        `To: ${ENABLED}`,
        `Subject: ${subject}`,
        `Date: ${new Date().toUTCString()}`,
        ...extra,
      ],
      entity,
      signer,
    );
  }

  function xmlValid(xml: Buffer): Promise<void> {
    return assertSchemaValid(xml, pki.dir);
  }

  function pdfText(pdf: Buffer): string {
    const run = spawnSync('pdftotext', ['-layout', '-', '-'], { input: pdf, encoding: 'utf8' });
    assert.ok(!run.error, `pdftotext could not run (${run.error?.message}): install poppler-utils`);
    assert.equal(run.status, 0, run.stderr);
    return run.stdout;
  }

  /** The report message's three parts: the original (message/rfc822), the PDF and the XML, decoded. */
  function reportParts(message: SunkMessage) {
    const { top, original, pdf, rest } = unsignedReportParts(message, 3);
    const [xml] = rest;
    assert.ok(xml);
    assert.match(xml.header, /^Content-Type: application\/xml; charset=utf-8; name="validation-report.xml"\r$/m);
    return { top, original, pdf, xml: Buffer.from(xml.body.toString('latin1'), 'base64') };
  }

  /** The report message of an unsigned message: the original and the PDF (`count` 2), decoded. */
  function unsignedReportParts(message: SunkMessage, count = 2) {
    const top = splitAtHeader(message.raw).header;
    assert.match(top, /^Content-Type: multipart\/mixed; boundary="smgw-report-[0-9a-f]+"\r$/m);
    const [original, pdf, ...rest] = partsOf(message.raw);
    assert.equal(rest.length + 2, count, `${count} parts`);
    assert.ok(original && pdf);
    assert.match(original.header, /^Content-Type: message\/rfc822\r$/m);
    assert.match(pdf.header, /^Content-Type: application\/pdf; name="Signaturpruefbericht.pdf"\r$/m);
    return {
      rest,
      top,
      original: original.body,
      pdf: Buffer.from(pdf.body.toString('latin1'), 'base64'),
    };
  }

  /** An attachment of the stranger's, named like the gateway's PDF report and showing a green result. */
  const FAKE_REPORT = [
    'Content-Type: application/pdf',
    'Content-Disposition: attachment; filename="Signaturpruefbericht.pdf"',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from('%PDF-1.4\n% GRUEN - gueltig / GREEN - valid (TOTAL_PASSED)\n%%EOF\n').toString('base64'),
  ];

  it('delivers signed mail to an enabled address as the report message, the original inside byte for byte', async () => {
    const sent = await signedMail('Antrag gruen', anna);
    await send(sent, [ENABLED]);
    const arrived = await arrivedFor(ENABLED, 'Antrag gruen');
    const { top, original, pdf, xml } = reportParts(arrived);
    assert.deepEqual(fieldValues(top, 'X-SMGW-Signature'), ['TOTAL_PASSED; level=basic; signatures=1']);
    assert.doesNotMatch(pdfText(pdf), /WARNUNG|WARNING/, 'no warning without an imitation');
    assert.deepEqual(fieldValues(top, 'Subject'), ['Antrag gruen'], 'the reader sees the original subject');
    // Ingest puts its Received field on top; everything the sender wrote follows unchanged.
    assert.ok(original.subarray(original.length - sent.length).equals(sent), 'the message as sent, byte for byte');
    assert.ok(await pki.opensslVerifies(original), 'openssl cms -verify accepts the extracted original');
    await xmlValid(xml);
    assert.match(xml.toString('utf8'), /urn:etsi:019102:mainindication:total-passed/);
    const text = pdfText(pdf);
    assert.match(text, /Signaturprüfbericht/);
    assert.match(text, /GRÜN – gültig/);
    assert.match(text, /GREEN – valid \(TOTAL_PASSED\)/);
    assert.match(text, /Die Signatur ist gültig/);
    assert.match(text, /The signature is valid/);
    assert.match(text, /"CN=anna/);
  });

  it('reports a tampered message as TOTAL_FAILED (red), the tampered original still inside as received', async () => {
    const sent = await signedMail('Antrag manipuliert', anna);
    const tampered = Buffer.from(
      sent.toString('latin1').replace('anbei mein Antrag', 'anbei mein Antrag NICHT'),
      'latin1',
    );
    await send(tampered, [ENABLED]);
    const arrived = await arrivedFor(ENABLED, 'Antrag manipuliert');
    const { top, original, pdf, xml } = reportParts(arrived);
    assert.deepEqual(fieldValues(top, 'X-SMGW-Signature'), ['TOTAL_FAILED; sub=HASH_FAILURE']);
    assert.ok(original.subarray(original.length - tampered.length).equals(tampered));
    assert.equal(await pki.opensslVerifies(original), false, 'openssl agrees that it does not verify');
    await xmlValid(xml);
    const text = pdfText(pdf);
    assert.match(text, /ROT – ungültig/);
    assert.match(text, /RED – invalid \(TOTAL_FAILED\)/);
    assert.match(text, /HASH_FAILURE/);
  });

  it('says identity=mismatch when From is not the signer’s address', async () => {
    const sent = await signedMail('Fremder Absender', anna, 'someone.else@partner.example');
    await send(sent, [ENABLED]);
    const { top, pdf } = reportParts(await arrivedFor(ENABLED, 'Fremder Absender'));
    assert.deepEqual(fieldValues(top, 'X-SMGW-Signature'), [
      'TOTAL_PASSED; level=basic; signatures=1; identity=mismatch',
    ]);
    assert.match(pdfText(pdf), /MISMATCH/);
  });

  it('fails a signer whose certificate the CRL revokes', async () => {
    await send(await signedMail('Gesperrt', revoked, revoked.email), [ENABLED]);
    const { top, pdf } = reportParts(await arrivedFor(ENABLED, 'Gesperrt'));
    assert.deepEqual(fieldValues(top, 'X-SMGW-Signature'), ['TOTAL_FAILED; sub=REVOKED']);
    assert.match(pdfText(pdf), /gesperrt/);
  });

  it('retries while the CRL cannot be fetched, then delivers as INDETERMINATE TRY_LATER (yellow)', async () => {
    await send(await signedMail('Sperrliste weg', unreachable, unreachable.email), [ENABLED]);
    const arrived = await arrivedFor(ENABLED, 'Sperrliste weg');
    const { top, pdf, xml } = reportParts(arrived);
    assert.deepEqual(fieldValues(top, 'X-SMGW-Signature'), ['INDETERMINATE; sub=TRY_LATER']);
    await xmlValid(xml);
    const text = pdfText(pdf);
    assert.match(text, /GELB – nicht bestätigt/);
    assert.match(text, /YELLOW – cannot be confirmed \(INDETERMINATE\)/);
    const trace = await getTrace(gw.db.pool, gatewayId(arrived));
    const verified = trace?.events.filter((e) => e.stage === 'verify' && e.code === 'VERIFY_INDETERMINATE') ?? [];
    assert.equal(verified.length, 1, 'verified once, after the retries');
    assert.ok(
      (await gw.service('signature-verify').metric('smgw_verify_envelopes_total', { outcome: 'retry' })) >= 2,
      'retried by the stage ladder while the CRL could not be fetched',
    );
  });

  it('leaves mail to an address not enabled untouched: never on the verify queue', async () => {
    const before = await gw.service('signature-verify').metric('smgw_verify_envelopes_total');
    const sent = await signedMail('Nicht aktiviert', anna);
    await send(sent, [NOT_ENABLED]);
    const arrived = await arrivedFor(NOT_ENABLED, 'Nicht aktiviert');
    assert.ok(arrived.raw.subarray(arrived.raw.length - sent.length).equals(sent), 'the message as sent');
    assert.equal(fieldValues(splitAtHeader(arrived.raw).header, 'X-SMGW-Signature').length, 0);
    assert.equal(await gw.service('signature-verify').metric('smgw_verify_envelopes_total'), before);
  });

  it('splits a message to enabled and other addresses: only the enabled get the report, both groups traced', async () => {
    const sent = await signedMail('Gemischt', anna);
    await send(sent, [ENABLED, NOT_ENABLED, ALSO_ENABLED]);
    const reported = await arrivedFor(ENABLED, 'Gemischt');
    const plain = await arrivedFor(NOT_ENABLED, 'Gemischt');
    assert.deepEqual(reported.rcptTo.sort(), [ENABLED, ALSO_ENABLED].sort());
    assert.deepEqual(plain.rcptTo, [NOT_ENABLED]);
    assert.deepEqual(fieldValues(reportParts(reported).top, 'X-SMGW-Signature'), [
      'TOTAL_PASSED; level=basic; signatures=1',
    ]);
    assert.ok(plain.raw.subarray(plain.raw.length - sent.length).equals(sent));
    const trace = await getTrace(gw.db.pool, gatewayId(plain));
    const events = trace?.events.map((e) => `${e.stage}:${e.event}`) ?? [];
    assert.ok(events.includes('scan:message.verification-routed'), events.join(', '));
    assert.ok(events.includes('scan:message.verification-skipped'), events.join(', '));
    assert.ok(events.includes('verify:message.signatures-verified'), events.join(', '));
  });

  it('gives an unsigned message holding a fake of the report the gateway’s report, with the warning', async () => {
    const sent = Buffer.from(
      [
        `From: Anna Schmidt <${SENDER}>`,
        `To: ${ENABLED}`,
        'Subject: Unsigniert mit falschem Bericht',
        'Content-Type: multipart/mixed; boundary="fake"',
        '',
        '--fake',
        'Content-Type: text/plain',
        '',
        'Die Signatur wurde vom Gateway geprueft, siehe Bericht.',
        '--fake',
        ...FAKE_REPORT,
        '--fake--',
        '',
      ].join('\r\n'),
    );
    await send(sent, [ENABLED]);
    const arrived = await arrivedFor(ENABLED, 'Unsigniert mit falschem Bericht');
    const { top, original, pdf } = unsignedReportParts(arrived);
    assert.deepEqual(fieldValues(top, 'X-SMGW-Signature'), ['NONE; imitation=present']);
    assert.deepEqual(fieldValues(top, 'Subject'), ['Unsigniert mit falschem Bericht']);
    assert.ok(original.subarray(original.length - sent.length).equals(sent), 'the message as sent, byte for byte');
    const text = pdfText(pdf).replace(/\s*\n\s*(?:» )?/g, ' ');
    assert.match(text, /Die Nachricht enthält 1 Anhang, der wie ein Prüfbericht benannt ist/);
    assert.match(text, /The message contains 1 attachment named like a verification report/);
    assert.match(text, /"Signaturpruefbericht\.pdf" \("\/2"\)/);
    assert.match(text, /keine Signatur gefunden/);
    const trace = await getTrace(gw.db.pool, gatewayId(arrived));
    const verified = trace?.events.find((e) => e.stage === 'verify' && e.code === 'VERIFY_NONE');
    assert.equal((verified?.data as { imitations?: number } | undefined)?.imitations, 1);
  });

  it('warns of a fake inside signed mail in the report; the original still verifies with openssl', async () => {
    const entity = Buffer.from(
      [
        'Content-Type: multipart/mixed; boundary="inner"',
        '',
        '--inner',
        'Content-Type: text/plain',
        '',
        'Anbei der Pruefbericht (Signiert mit falschem Bericht).',
        '--inner',
        ...FAKE_REPORT,
        '--inner--',
        '',
      ].join('\r\n'),
    );
    const sent = await pki.signedMail(
      [`From: Anna Schmidt <${SENDER}>`, `To: ${ENABLED}`, 'Subject: Signiert mit falschem Bericht'],
      entity,
      anna,
    );
    await send(sent, [ENABLED]);
    const arrived = await arrivedFor(ENABLED, 'Signiert mit falschem Bericht');
    const { top, original, pdf, xml } = reportParts(arrived);
    assert.deepEqual(fieldValues(top, 'X-SMGW-Signature'), [
      'TOTAL_PASSED; level=basic; signatures=1; imitation=present',
    ]);
    assert.ok(original.subarray(original.length - sent.length).equals(sent), 'the message as sent, byte for byte');
    assert.ok(await pki.opensslVerifies(original), 'openssl cms -verify accepts the extracted original');
    await xmlValid(xml);
    assert.match(xml.toString('utf8'), /<smgw:Notice code="REPORT_IMITATION">/);
    const text = pdfText(pdf).replace(/\s*\n\s*(?:» )?/g, ' ');
    assert.match(text, /WARNUNG: Die Nachricht enthält 1 Anhang/);
    assert.match(text, /The gateway did not write it: it is the sender’s and must not be trusted/);
    assert.match(text, /"Signaturpruefbericht\.pdf" \("\/1\/2"\)/);
    assert.match(text, /GRÜN – gültig/, 'the signature itself is still valid');
  });

  it('strips a forged X-SMGW-Signature: the enabled address sees only the gateway’s, the other none', async () => {
    const forged = Buffer.from(
      [
        'X-SMGW-Signature: TOTAL_PASSED; level=QES; signatures=1',
        `From: Anna Schmidt <${SENDER}>`,
        `To: ${ENABLED}, ${NOT_ENABLED}`,
        'Subject: Gefaelschte Zusammenfassung',
        'x-smgw-signature : TOTAL_PASSED; level=QES; signatures=1',
        '',
        'Unsigniert, aber mit gefaelschtem Kopf.',
        '',
      ].join('\r\n'),
    );
    await send(forged, [ENABLED, NOT_ENABLED]);
    const enabled = await arrivedFor(ENABLED, 'Gefaelschte Zusammenfassung');
    const other = await arrivedFor(NOT_ENABLED, 'Gefaelschte Zusammenfassung');
    assert.deepEqual(fieldValues(splitAtHeader(enabled.raw).header, 'X-SMGW-Signature'), ['NONE']);
    assert.doesNotMatch(enabled.raw.toString('latin1'), /QES/);
    // Unsigned and without an imitation of the report: on as it is, no report.
    assert.doesNotMatch(enabled.raw.toString('latin1'), /smgw-report-|Signaturpruefbericht/);
    assert.doesNotMatch(other.raw.toString('latin1'), /x-smgw-signature/i);
  });
});
