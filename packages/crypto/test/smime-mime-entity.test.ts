// Content-Type values as the S/MIME layer and ingest read them: real headers as written, hostile ones in linear time
// and with a bound on what is read.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseHeaderFields } from '@smgw/mime';
import { inboundCryptoWork } from '../src/inbound-work/inbound-crypto-work.ts';
import {
  contentTypeParameters,
  isSignedContentType,
  MAX_CONTENT_TYPE_PARAMETERS_LENGTH,
  multipartParts,
  parseContentType,
} from '../src/smime/mime-entity.ts';

describe('parseContentType on real headers', () => {
  const cases: Array<{ value: string | undefined; mediaType: string; parameters: Record<string, string> }> = [
    { value: undefined, mediaType: 'text/plain', parameters: {} },
    { value: 'TEXT/Plain', mediaType: 'text/plain', parameters: {} },
    {
      value: 'multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256;\r\n\tboundary="----=_Part_1"',
      mediaType: 'multipart/signed',
      parameters: { protocol: 'application/pkcs7-signature', micalg: 'sha-256', boundary: '----=_Part_1' },
    },
    {
      value: 'application/pkcs7-mime; smime-type=signed-data; name=smime.p7m',
      mediaType: 'application/pkcs7-mime',
      parameters: { 'smime-type': 'signed-data', name: 'smime.p7m' },
    },
    {
      value: 'text/plain; Charset = "utf-8" ; format=flowed;',
      mediaType: 'text/plain',
      parameters: { charset: 'utf-8', format: 'flowed' },
    },
    {
      value: 'application/pdf; name="Bescheid \\"final\\"; Kopie.pdf"',
      mediaType: 'application/pdf',
      parameters: { name: 'Bescheid "final"; Kopie.pdf' },
    },
    {
      value: "application/pdf; name*0*=utf-8''Antrag%20; name*1*=%C3%BCber.pdf",
      mediaType: 'application/pdf',
      parameters: { 'name*0*': "utf-8''Antrag%20", 'name*1*': '%C3%BCber.pdf' },
    },
    { value: 'multipart/mixed; garbage; boundary=b1', mediaType: 'multipart/mixed', parameters: { boundary: 'b1' } },
    {
      value: 'multipart/mixed; boundary=b1; boundary=b2',
      mediaType: 'multipart/mixed',
      parameters: { boundary: 'b2' },
    },
  ];
  for (const { value, mediaType, parameters } of cases) {
    it(`reads ${JSON.stringify(value)}`, () => {
      assert.deepEqual(parseContentType(value), { mediaType, parameters });
    });
  }

  it('lists repeated parameters in the order written', () => {
    assert.deepEqual(contentTypeParameters('multipart/mixed; Boundary=b1; x=y; boundary="b2"'), [
      { name: 'boundary', value: 'b1' },
      { name: 'x', value: 'y' },
      { name: 'boundary', value: 'b2' },
    ]);
  });

  it('tells a signed S/MIME entity by its Content-Type', () => {
    assert.equal(isSignedContentType('multipart/signed; protocol="application/pkcs7-signature"; boundary=b'), true);
    assert.equal(isSignedContentType('application/x-pkcs7-mime; smime-type="Signed-Data"'), true);
    assert.equal(isSignedContentType('application/pkcs7-mime; smime-type=enveloped-data'), false);
  });
});

describe('parseContentType on hostile headers', { timeout: 30_000 }, () => {
  it('reads parameters up to MAX_CONTENT_TYPE_PARAMETERS_LENGTH and none beyond, the media type still', () => {
    const padding = (length: number) => `multipart/mixed; x="${'a'.repeat(length)}"; boundary=b1`;
    const fits = padding(MAX_CONTENT_TYPE_PARAMETERS_LENGTH - padding(0).length);
    assert.equal(fits.length, MAX_CONTENT_TYPE_PARAMETERS_LENGTH);
    assert.equal(parseContentType(fits).parameters.boundary, 'b1');
    assert.deepEqual(parseContentType(`${fits} `), { mediaType: 'multipart/mixed', parameters: {} });
  });

  // Each case was quadratic (a run without `=` rescanned from every start); 100 KB took seconds, 1 MB minutes.
  const hostile: Array<{ what: string; value: string }> = [
    { what: 'a 1 MB run without `=`', value: `multipart/mixed; ${'a'.repeat(1_000_000)}` },
    { what: 'a 1 MB run of names and spaces', value: `multipart/mixed; ${'a '.repeat(500_000)}` },
    { what: 'a run without `=` just below the bound', value: `multipart/mixed; ${'a'.repeat(8000)}` },
    { what: 'unclosed quotes just below the bound', value: `multipart/mixed; ${'a="\\'.repeat(2000)}` },
  ];
  for (const { what, value } of hostile) {
    it(`reads ${what} in one pass`, () => {
      assert.equal(parseContentType(value).mediaType, 'multipart/mixed');
      assert.equal(isSignedContentType(value), false);
    });
  }

  it('judges a message whose Content-Type is 1 MB without `=` (ingest reads it for every inbound mail)', () => {
    const fields = parseHeaderFields(
      `From: x@example.org\r\nContent-Type: multipart/signed; ${'a'.repeat(1_000_000)}\r\n`,
    );
    const work = inboundCryptoWork(fields, Buffer.from('body'));
    // Its parameters are not read: a multipart/signed without protocol or boundary, as a garbage one is.
    assert.equal(work.maySignSmime, true);
    assert.equal(work.encryptedForm, undefined);
  });
});

describe('multipartParts with a budget of parts', () => {
  const body = (count: number, closed = true) =>
    Buffer.from(`${'--b\r\nx\r\n'.repeat(count)}${closed ? '--b--\r\n' : ''}`, 'latin1');

  it('splits no further than one part beyond the budget (100,000 parts, a budget of 10)', () => {
    const parts = multipartParts(body(100_000), 'b', 10);
    assert.equal(parts.length, 11, 'one more than asked says there are more');
    assert.ok(parts.every((part) => part.toString() === 'x'));
    assert.equal(multipartParts(body(100_000), 'b').length, 100_000, 'without a budget: all of them');
  });

  it('gives all parts of a body within the budget, and still refuses one without its closing delimiter', () => {
    assert.equal(multipartParts(body(10), 'b', 10).length, 10);
    assert.throws(() => multipartParts(body(10, false), 'b', 10), /without its parts/);
    // Beyond the budget whether it is closed is not looked at: the caller stops there anyway.
    assert.equal(multipartParts(body(12, false), 'b', 10).length, 11);
  });
});
