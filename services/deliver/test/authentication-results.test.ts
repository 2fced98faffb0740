import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { authenticationResultsField, withPrefix } from '../src/authentication-results.ts';
import { sampleEnvelope } from './fixtures.ts';

const at = '2026-03-02T09:00:00.000Z';
const FIELD = 'Authentication-Results: smgw.test;\r\n\tspf=pass smtp.mailfrom=a@b.example;\r\n\tdmarc=pass\r\n';

describe('Authentication-Results at delivery', () => {
  it("puts ingest's field in front of the message, still streamed", async () => {
    const envelope = sampleEnvelope({ verdicts: { auth: { status: 'pass', at, field: FIELD } } });
    const field = authenticationResultsField(envelope);
    assert.equal(field.toString('latin1'), FIELD);
    const sent = await text(withPrefix(field, Readable.from([Buffer.from('Subject: x\r\n\r\nbody\r\n')])));
    assert.equal(sent, `${FIELD}Subject: x\r\n\r\nbody\r\n`);
  });

  it('adds nothing without a verdict, and nothing that is not one well-formed field', () => {
    assert.equal(authenticationResultsField(sampleEnvelope()).length, 0);
    for (const field of [
      'Authentication-Results: smgw.test; spf=pass\r\nX-Injected: yes\r\n',
      'X-Other: smgw.test\r\n',
      'Authentication-Results: smgw.test; spf=pass',
      'Authentication-Results: smgw.test; spf=p\u00e4ss\r\n',
    ]) {
      const envelope = sampleEnvelope({ verdicts: { auth: { status: 'pass', at, field } } });
      assert.equal(authenticationResultsField(envelope).length, 0, JSON.stringify(field));
    }
  });

  it('joins the field to the first piece (one write to the socket), and sends it alone before an empty message', async () => {
    const field = Buffer.from(FIELD, 'latin1');
    const pieces: Buffer[] = [];
    for await (const piece of withPrefix(field, Readable.from([Buffer.from('Subject: x\r\n'), Buffer.from('\r\nb')]))) {
      pieces.push(piece as Buffer);
    }
    assert.deepEqual(
      pieces.map((p) => p.toString('latin1')),
      [`${FIELD}Subject: x\r\n`, '\r\nb'],
    );
    assert.equal(await text(withPrefix(field, Readable.from([]))), FIELD);
  });

  it('passes the message on as it is when there is nothing to add', () => {
    const raw = Readable.from([Buffer.from('x')]);
    assert.equal(withPrefix(Buffer.alloc(0), raw), raw);
  });
});
