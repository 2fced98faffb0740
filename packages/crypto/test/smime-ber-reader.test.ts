// readBer on hostile input: the element count and the caller's depth bound what it builds; real CMS from openssl
// still reads whole.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { holdsOverlongOid, MAX_BER_ELEMENTS, MAX_OID_BYTES, readBer } from '../src/smime/ber-reader.ts';
import { SmimeError } from '../src/smime/errors.ts';
import { longOid, tlv } from './der-elements.ts';
import { createOpensslWorkspace, type OpensslWorkspace, type TestIdentity } from './smime-openssl.ts';

/** `30 80`, then `count` empty SEQUENCEs (`30 00`), then end-of-contents: 2 input bytes per element. */
function emptySequenceBomb(count: number): Buffer {
  const bytes = Buffer.alloc(2 + count * 2 + 2, 0);
  bytes[0] = 0x30;
  bytes[1] = 0x80;
  for (let i = 0; i < count; i++) bytes[2 + 2 * i] = 0x30;
  return bytes;
}

/** `depth` indefinite-length SEQUENCEs inside each other around `inner`. */
function nestedIndefinite(depth: number, inner: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from('3080'.repeat(depth), 'hex'), inner, Buffer.from('0000'.repeat(depth), 'hex')]);
}

const isMalformed = (pattern: RegExp) => (error: unknown) =>
  error instanceof SmimeError && error.code === 'SMIME_MALFORMED' && pattern.test(error.message);

describe('readBer on hostile input', () => {
  it('refuses more elements than MAX_BER_ELEMENTS with SMIME_MALFORMED', () => {
    assert.throws(() => readBer(emptySequenceBomb(1_500_000)), isMalformed(/ASN\.1 elements/));
  });

  it('reads exactly MAX_BER_ELEMENTS elements', () => {
    const top = readBer(emptySequenceBomb(MAX_BER_ELEMENTS - 1));
    assert.equal(top.children.length, MAX_BER_ELEMENTS - 1);
    assert.throws(() => readBer(emptySequenceBomb(MAX_BER_ELEMENTS)), isMalformed(/ASN\.1 elements/));
  });

  it('counts the elements it skips below listDepth as well', () => {
    assert.throws(() => readBer(nestedIndefinite(3, emptySequenceBomb(1_500_000)), 1), isMalformed(/ASN\.1 elements/));
  });

  it('reads a 3 MB element-count bomb within a 128 MB heap', () => {
    const reader = fileURLToPath(new URL('../src/smime/ber-reader.ts', import.meta.url));
    const child = `
      const { readBer } = await import(${JSON.stringify(reader)});
      const bytes = Buffer.alloc(3_000_004, 0);
      bytes[0] = 0x30; bytes[1] = 0x80;
      for (let i = 2; i < bytes.length - 2; i += 2) bytes[i] = 0x30;
      try { readBer(bytes); console.log('read'); } catch (error) { console.log(error.code); }
    `;
    const run = spawnSync(process.execPath, ['--max-old-space-size=128', '--input-type=module', '-e', child], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(run.status, 0, `the reader died (signal ${run.signal}): ${run.stderr}`);
    assert.equal(run.stdout.trim(), 'SMIME_MALFORMED');
  });

  it('keeps an indefinite-length element below listDepth whole, without children', () => {
    const bytes = Buffer.concat([
      Buffer.from('3080', 'hex'),
      nestedIndefinite(4, Buffer.from('0500', 'hex')),
      Buffer.from('0000', 'hex'),
    ]);
    const top = readBer(bytes, 1);
    assert.equal(top.raw.length, bytes.length);
    assert.equal(top.children.length, 1);
    const [child] = top.children;
    assert.equal(child?.raw.length, bytes.length - 4);
    assert.deepEqual(child?.children, []);
    assert.equal(readBer(bytes).children[0]?.children[0]?.children[0]?.children[0]?.children[0]?.tagNumber, 5);
  });

  it('refuses nesting beyond the depth bound in a skipped element too', () => {
    assert.throws(() => readBer(nestedIndefinite(60), 1), isMalformed(/nesting too deep/));
    assert.throws(() => readBer(nestedIndefinite(60)), isMalformed(/nesting too deep/));
  });

  it('refuses a skipped element without its end-of-contents', () => {
    const truncated = nestedIndefinite(5).subarray(0, -2);
    assert.throws(() => readBer(truncated, 1), isMalformed(/end-of-contents missing/));
  });
});

/** An OID of `bytes` content bytes. */
const oidOfBytes = (bytes: number): Buffer => longOid((bytes - 1) >> 1, (bytes - 1) % 2);

// pkijs reads stranger DER (the certificates of signed mail, the SignedData encrypt harvests from) with asn1js, which
// builds an object per arc: an OID of a message's megabytes held the event loop seconds to a minute.
describe('holdsOverlongOid', () => {
  it('finds an OID of 4 MB in a certificate-like structure, and in an extension value, at once', () => {
    const big = oidOfBytes(4_000_000);
    assert.equal(holdsOverlongOid(tlv(0x30, tlv(0x30, Buffer.concat([tlv(0x02, Buffer.from([1])), big])))), true);
    const extension = tlv(0x30, Buffer.concat([oidOfBytes(3), tlv(0x04, tlv(0x30, big))]));
    assert.equal(holdsOverlongOid(tlv(0x30, tlv(0xa3, tlv(0x30, extension)))), true);
    // RELATIVE-OID (13) is read by asn1js the same way.
    assert.equal(holdsOverlongOid(tlv(0x30, tlv(0x0d, Buffer.alloc(4_000_000, 1)))), true);
  });

  it('lets OIDs up to MAX_OID_BYTES, unreadable DER and DER wrapped deeper than it looks pass to the parser', () => {
    const atLimit = oidOfBytes(MAX_OID_BYTES);
    assert.equal(readBer(atLimit).content.length, MAX_OID_BYTES);
    assert.equal(holdsOverlongOid(tlv(0x30, Buffer.concat([atLimit, tlv(0x04, tlv(0x30, atLimit))]))), false);
    assert.equal(holdsOverlongOid(tlv(0x30, oidOfBytes(MAX_OID_BYTES + 1))), true);
    // The parser refuses what readBer cannot read; this says nothing of it.
    assert.equal(holdsOverlongOid(Buffer.from('3005060101', 'hex')), false);
    assert.equal(holdsOverlongOid(Buffer.alloc(0)), false);
    // An OCTET STRING holding something else than DER (a message's content) is not an error either.
    assert.equal(holdsOverlongOid(tlv(0x30, tlv(0x04, Buffer.alloc(100_000, 0x41)))), false);
    const wrapped = (depth: number): Buffer => (depth === 0 ? oidOfBytes(1000) : tlv(0x04, wrapped(depth - 1)));
    assert.equal(holdsOverlongOid(tlv(0x30, wrapped(2))), true);
    assert.equal(holdsOverlongOid(tlv(0x30, wrapped(3))), false);
  });

  it('finds a long OID deeper than readBer lists (asn1js reads 100 levels), and nothing where there is none', () => {
    const nested = (depth: number, oid: Buffer): Buffer => (depth === 0 ? oid : tlv(0x30, nested(depth - 1, oid)));
    assert.equal(holdsOverlongOid(nested(60, oidOfBytes(1000))), true);
    assert.equal(holdsOverlongOid(tlv(0x30, tlv(0x04, nested(60, oidOfBytes(1000))))), true);
    assert.equal(holdsOverlongOid(nested(40, oidOfBytes(1000))), true);
    assert.equal(holdsOverlongOid(nested(60, oidOfBytes(3))), false);
  });

  it('counts more elements than readBer lists as a long OID, unless told only an OID seen counts (a CRL of MBs)', () => {
    // A CRL of 4 MiB holds some 100,000 serials, several elements each.
    const serial = tlv(
      0x30,
      Buffer.concat([tlv(0x02, Buffer.from([1, 2, 3, 4])), tlv(0x17, Buffer.from('261206000000Z'))]),
    );
    const manyElements = tlv(0x30, Buffer.concat(new Array(Math.ceil(MAX_BER_ELEMENTS / 3) + 1).fill(serial)));
    assert.equal(holdsOverlongOid(manyElements), true);
    assert.equal(holdsOverlongOid(manyElements, 2, false), false);
  });
});

describe('readBer on what openssl cms produces', () => {
  let ws: OpensslWorkspace;
  let signer: TestIdentity;
  let contentPath: string;

  before(async () => {
    ws = await createOpensslWorkspace();
    signer = await ws.identity('rsa-2048', 'signer');
    // Not a multiple of the 4 KiB segments openssl streams in.
    contentPath = await ws.file('content.bin', Buffer.alloc(300_001, 0x61));
  });
  after(async () => {
    await ws.remove();
  });

  // Recipient certificates come last on openssl's command line.
  const streamed = (operation: string[]): Promise<Buffer> =>
    ws.openssl(['cms', '-stream', '-binary', '-outform', 'DER', '-in', contentPath, ...operation]);

  it('reads a streamed (indefinite-length) EnvelopedData whole', async () => {
    const cms = await streamed(['-encrypt', '-aes256', signer.certificatePath]);
    const top = readBer(cms);
    assert.equal(top.raw.length, cms.length);
    assert.equal(top.children.length, 2);
  });

  it('reads a streamed SignedData with its content and certificates, listed or kept whole', async () => {
    const cms = await streamed(['-sign', '-nodetach', '-signer', signer.certificatePath, '-inkey', signer.keyPath]);
    const whole = readBer(cms);
    assert.equal(whole.raw.length, cms.length);
    const signedData = whole.children[1]?.children[0];
    assert.ok((signedData?.children.length ?? 0) >= 4);
    // Down to the SignedData's fields, as the signature verifier reads it: the content is kept whole, not listed.
    const outline = readBer(cms, 4);
    assert.equal(outline.raw.length, cms.length);
    const fields = outline.children[1]?.children[0]?.children ?? [];
    assert.deepEqual(
      fields.map((field) => field.raw.length),
      signedData?.children.map((field) => field.raw.length),
    );
    const encapsulated = fields[2]?.children[1];
    assert.ok(encapsulated);
    assert.deepEqual(encapsulated.children, []);
  });
});
