// The trusted-list settings: off when unset, a list never without its signer certificate, the LOTL mode
// complete or refused, relative paths refused; signer certificates read from a PEM file.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '@smgw/config';
import { parseTrustedListConfig, readSignerCertificates, TrustedListError } from '../src/index.ts';
import { TestPki } from './test-pki.ts';

const badSetting = (variable: string) => (err: unknown) => err instanceof ConfigError && err.variable === variable;

describe('trusted-list settings', () => {
  it('nothing set: no trusted lists', () => {
    assert.deepEqual(parseTrustedListConfig({}), { single: undefined, listOfLists: undefined });
  });

  it('one list with its signer certificate, and the LOTL with its folder, side by side', () => {
    const config = parseTrustedListConfig({
      SMGW_TRUSTED_LIST_FILE: '/etc/smgw/tl/DE.xml',
      SMGW_TRUSTED_LIST_SIGNER_CERT: '/etc/smgw/tl/de-signer.pem',
      SMGW_LOTL_FILE: '/etc/smgw/tl/eu-lotl.xml',
      SMGW_LOTL_SIGNER_CERT: '/etc/smgw/tl/lotl-signer.pem',
      SMGW_TRUSTED_LIST_DIR: '/etc/smgw/tl/national',
    });
    assert.deepEqual(config, {
      single: { file: '/etc/smgw/tl/DE.xml', signerCertFile: '/etc/smgw/tl/de-signer.pem' },
      listOfLists: {
        file: '/etc/smgw/tl/eu-lotl.xml',
        signerCertFile: '/etc/smgw/tl/lotl-signer.pem',
        directory: '/etc/smgw/tl/national',
      },
    });
  });

  it('a list without its signer certificate (or the reverse) is a configuration error', () => {
    assert.throws(
      () => parseTrustedListConfig({ SMGW_TRUSTED_LIST_FILE: '/tl.xml' }),
      badSetting('SMGW_TRUSTED_LIST_SIGNER_CERT'),
    );
    assert.throws(
      () => parseTrustedListConfig({ SMGW_TRUSTED_LIST_SIGNER_CERT: '/c.pem' }),
      badSetting('SMGW_TRUSTED_LIST_FILE'),
    );
  });

  it('an incomplete LOTL mode names the missing setting', () => {
    assert.throws(
      () => parseTrustedListConfig({ SMGW_LOTL_FILE: '/lotl.xml', SMGW_TRUSTED_LIST_DIR: '/tl' }),
      badSetting('SMGW_LOTL_SIGNER_CERT'),
    );
    assert.throws(() => parseTrustedListConfig({ SMGW_TRUSTED_LIST_DIR: '/tl' }), badSetting('SMGW_LOTL_FILE'));
    assert.throws(
      () => parseTrustedListConfig({ SMGW_LOTL_FILE: '/lotl.xml', SMGW_LOTL_SIGNER_CERT: '/c.pem' }),
      badSetting('SMGW_TRUSTED_LIST_DIR'),
    );
  });

  it('relative paths are refused', () => {
    assert.throws(
      () => parseTrustedListConfig({ SMGW_TRUSTED_LIST_FILE: 'tl.xml', SMGW_TRUSTED_LIST_SIGNER_CERT: '/c.pem' }),
      badSetting('SMGW_TRUSTED_LIST_FILE'),
    );
  });

  it('reads every certificate of a PEM file, and refuses a file without one', async () => {
    const pki = new TestPki();
    const dir = mkdtempSync(join(tmpdir(), 'smgw-tl-pem-'));
    try {
      const a = pki.selfSigned('a', ['keyUsage=critical,digitalSignature']);
      const b = pki.selfSigned('b', ['keyUsage=critical,digitalSignature']);
      writeFileSync(join(dir, 'two.pem'), `${a.certPem}\n${b.certPem}`);
      writeFileSync(join(dir, 'none.pem'), 'no certificate here');
      const certs = await readSignerCertificates(join(dir, 'two.pem'));
      assert.deepEqual(
        certs.map((c) => c.fingerprint256),
        [a.cert.fingerprint256, b.cert.fingerprint256],
      );
      await assert.rejects(
        readSignerCertificates(join(dir, 'none.pem')),
        (err) => err instanceof TrustedListError && err.code === 'TL_NO_SIGNER_CERT',
      );
    } finally {
      pki.remove();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
