// Hostile XML handed in as a trusted list: external entities (XXE), entity expansion (billion laughs), DTDs
// hidden in odd spellings, oversize and non-UTF-8 input. Each is refused before any parser or signature check.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadTrustedList, loadTrustedListFile, TrustedListError } from '../src/index.ts';
import { TestPki } from './test-pki.ts';

const pki = new TestPki();
const anyCert = pki.selfSigned('any-signer', ['keyUsage=critical,digitalSignature']).certPem;
after(() => pki.remove());

function refusedWith(code: string): (err: unknown) => boolean {
  return (err) => err instanceof TrustedListError && err.code === code;
}

const load = (text: string | Uint8Array, maxBytes?: number) =>
  loadTrustedList(typeof text === 'string' ? Buffer.from(text) : text, {
    signerCertificates: [anyCert],
    now: new Date('2026-01-01T00:00:00Z'),
    maxBytes,
  });

const TSL = 'xmlns="http://uri.etsi.org/02231/v2#"';

describe('hostile XML as a trusted list', () => {
  const cases: [string, string][] = [
    [
      'an external entity reading a local file (XXE)',
      `<?xml version="1.0"?><!DOCTYPE TrustServiceStatusList [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><TrustServiceStatusList ${TSL}><SchemeInformation><SchemeTerritory>&xxe;</SchemeTerritory></SchemeInformation></TrustServiceStatusList>`,
    ],
    [
      'an external entity fetching a URL (SSRF)',
      `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd">%remote;]><TrustServiceStatusList ${TSL}/>`,
    ],
    [
      'billion laughs',
      `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]><TrustServiceStatusList ${TSL}><SchemeInformation><SchemeTerritory>&lol9;</SchemeTerritory></SchemeInformation></TrustServiceStatusList>`,
    ],
    ['a DOCTYPE in lower case', `<!doctype x SYSTEM "file:///etc/passwd"><TrustServiceStatusList ${TSL}/>`],
    [
      'an external DTD without internal subset',
      `<!DOCTYPE x SYSTEM "http://127.0.0.1:9/x.dtd"><TrustServiceStatusList ${TSL}/>`,
    ],
  ];
  for (const [name, xml] of cases) {
    it(`${name} is refused before parsing`, () => {
      assert.throws(() => load(xml), refusedWith('TL_DTD_REFUSED'));
    });
  }

  it('a list over the size limit is refused, from bytes and from a file (checked before reading)', async () => {
    const big = `<TrustServiceStatusList ${TSL}>${' '.repeat(2048)}</TrustServiceStatusList>`;
    assert.throws(() => load(big, 1024), refusedWith('TL_TOO_LARGE'));
    const dir = mkdtempSync(join(tmpdir(), 'smgw-tl-size-'));
    try {
      writeFileSync(join(dir, 'big.xml'), big);
      await assert.rejects(
        loadTrustedListFile(join(dir, 'big.xml'), { signerCertificates: [anyCert], now: new Date(), maxBytes: 1024 }),
        refusedWith('TL_TOO_LARGE'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('UTF-16 and invalid UTF-8 are refused', () => {
    const utf16 = Buffer.from(
      `\ufeff<?xml version="1.0" encoding="UTF-16"?><TrustServiceStatusList ${TSL}/>`,
      'utf16le',
    );
    assert.throws(() => load(utf16), refusedWith('TL_NOT_XML'));
    assert.throws(() => load(new Uint8Array([0x3c, 0x61, 0xff, 0xfe, 0x3e])), refusedWith('TL_NOT_XML'));
    assert.throws(
      () => load(`<?xml version="1.0" encoding="ISO-8859-1"?><TrustServiceStatusList ${TSL}/>`),
      refusedWith('TL_NOT_XML'),
    );
  });

  it('malformed XML and other roots are refused', () => {
    assert.throws(
      () => load(`<TrustServiceStatusList ${TSL}><open></TrustServiceStatusList>`),
      refusedWith('TL_NOT_XML'),
    );
    assert.throws(() => load(''), refusedWith('TL_NOT_XML'));
    assert.throws(() => load('<html><body/></html>'), refusedWith('TL_NOT_A_TRUSTED_LIST'));
  });

  it('a signer certificate that cannot be read is a typed refusal', () => {
    assert.throws(
      () =>
        loadTrustedList(Buffer.from(`<TrustServiceStatusList ${TSL}/>`), {
          signerCertificates: ['not a certificate'],
          now: new Date(),
        }),
      refusedWith('TL_NO_SIGNER_CERT'),
    );
  });

  it('a file that does not exist is reported as unreadable', async () => {
    await assert.rejects(
      loadTrustedListFile('/nonexistent/smgw/tl.xml', { signerCertificates: [anyCert], now: new Date() }),
      refusedWith('TL_UNREADABLE'),
    );
  });
});
