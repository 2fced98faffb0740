// Malware inside a CMS SignedData, through the MX port with default settings (the review's case): clamd does not open
// CMS, a mail client shows the signed content directly, and any stranger can sign with a self-made certificate. The
// scan stage takes the content out and scans it; ingest's own scan never clears such a message.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  assertQueued,
  EICAR,
  entityWithAttachment,
  mailWithAttachmentNamed,
  opaqueSignedMail,
  signedDataOf,
  startTestGateway,
  type TestGateway,
  waitFor,
} from '@smgw/testing';
import { getTrace } from '@smgw/trace';
import nodemailer from 'nodemailer';

describe('content inside a SignedData, sent to an agency through the MX port', () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startTestGateway({
      services: ['ingest', 'encrypt', 'scan', 'deliver'],
      env: { SMGW_REVOCATION_MODE: 'off' },
    });
  });
  after(() => gw?.close());

  /** Sends `raw` from outside to an agency address; the states its recipients end in, and what the relay got. */
  async function sendAndSettle(raw: Buffer, marker: string) {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.inboundPort, ignoreTLS: true });
    let id: string;
    try {
      const info = await transport.sendMail({
        envelope: { from: 'absender@extern.example', to: ['stelle@behoerde.example'] },
        raw,
      });
      id = assertQueued(info.response);
    } finally {
      transport.close();
    }
    const states = await waitFor(`${marker} delivered or quarantined`, async () => {
      const trace = await getTrace(gw.db.pool, id);
      const found = trace?.recipients.map((r) => r.state) ?? [];
      return found.length > 0 && found.every((s) => s === 'delivered' || s === 'quarantined') ? found : undefined;
    });
    const delivered = gw.relay.messages.find((m) => m.raw.includes(Buffer.from(marker)));
    return { id, states, delivered };
  }

  async function findingOf(id: string): Promise<string | undefined> {
    const rows = await gw.db.pool.query<{ finding: string }>('select finding from quarantine where message_id = $1', [
      id,
    ]);
    return rows.rows[0]?.finding;
  }

  it('quarantines EICAR in an attachment of an opaque-signed S/MIME message, and does not deliver it', async () => {
    const raw = opaqueSignedMail(signedDataOf(entityWithAttachment('rechnung.com', EICAR)), 'Rechnung OPAQUE-EICAR');
    const { id, states, delivered } = await sendAndSettle(raw, 'OPAQUE-EICAR');
    assert.deepEqual(states, ['quarantined']);
    assert.equal(delivered, undefined);
    assert.match((await findingOf(id)) ?? '', /Eicar/i);
  });

  it('quarantines EICAR in a .p7m attachment (a signed document), and does not deliver it', async () => {
    const raw = mailWithAttachmentNamed('rechnung.com.gz.p7m', signedDataOf(gzipSync(EICAR)), 'Vertrag P7M-EICAR');
    const { id, states, delivered } = await sendAndSettle(raw, 'P7M-EICAR');
    assert.deepEqual(states, ['quarantined']);
    assert.equal(delivered, undefined);
    assert.match((await findingOf(id)) ?? '', /Eicar/i);
  });

  it('delivers a clean opaque-signed message as before, its bytes unchanged', async () => {
    const raw = opaqueSignedMail(
      signedDataOf(entityWithAttachment('rechnung.txt', Buffer.from('Betrag: 12 EUR'))),
      'Rechnung OPAQUE-CLEAN',
    );
    const { states, delivered } = await sendAndSettle(raw, 'OPAQUE-CLEAN');
    assert.deepEqual(states, ['delivered']);
    // What the relay gets is what was sent, after the gateway's own header fields on top.
    assert.ok(delivered?.raw.subarray(delivered.raw.length - raw.length).equals(raw), 'the message arrives unchanged');
  });

  it('does not deliver a SignedData it cannot take apart as clean: quarantined, the finding saying so', async () => {
    const signed = signedDataOf(entityWithAttachment('rechnung.com', EICAR));
    const raw = opaqueSignedMail(signed.subarray(0, signed.length - 300), 'Rechnung OPAQUE-BROKEN');
    const { id, states, delivered } = await sendAndSettle(raw, 'OPAQUE-BROKEN');
    assert.deepEqual(states, ['quarantined']);
    assert.equal(delivered, undefined);
    assert.equal(await findingOf(id), 'Smgw.Broken.SignedData');
  });
});
