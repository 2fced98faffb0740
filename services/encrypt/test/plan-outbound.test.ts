// The outbound plan decided on looked-up key material, without database or network: each recipient's form, the
// groups sharing one copy, the S/MIME ciphers, and the signing of each copy. The keys here are plain data; what
// the real lookups return is tested against the key directory in choose-form.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StoredCapabilities } from '@smgw/key-directory';
import type { PgpSigner, SenderSigning, SmimeSigner } from '../src/agency-signing.ts';
import { RevocationUnavailableError } from '../src/choose-form.ts';
import type { CheckedCertificate, CheckedPgpKey, RecipientKeys } from '../src/outbound-keys.ts';
import { type OutboundPlan, planOutbound } from '../src/plan-outbound.ts';

const GCM_AND_OAEP: StoredCapabilities = { contentCiphers: ['aes-256-gcm', 'aes-256-cbc'], keyTransport: 'rsa-oaep' };

function validCertificate(
  fingerprint: string,
  keyType: 'rsa' | 'ec' = 'rsa',
  capabilities: StoredCapabilities | null = null,
): CheckedCertificate {
  return { fingerprint, der: Buffer.from(fingerprint), capabilities, validation: { ok: true, keyType } };
}

function invalidCertificate(fingerprint: string, problem: string, revocationUnavailable?: string): CheckedCertificate {
  const validation = revocationUnavailable
    ? { ok: false as const, problem, revocationUnavailable }
    : { ok: false as const, problem };
  return { fingerprint, der: Buffer.from(fingerprint), capabilities: null, validation };
}

function pgpKey(
  fingerprint: string,
  state: CheckedPgpKey['state'] = 'approved',
  problems: string[] = [],
): CheckedPgpKey {
  return { fingerprint, armored: `armored ${fingerprint}`, state, problems };
}

function keysOf(
  recipient: string,
  certificates: CheckedCertificate[] = [],
  pgpKeys: CheckedPgpKey[] = [],
): RecipientKeys {
  return { recipient, certificates, pgpKeys };
}

const NOT_SIGNING: SenderSigning = { signs: false };

/** Every recipient named in To/Cc unless `namedInHeader` says otherwise. */
function plan(
  recipients: RecipientKeys[],
  signing = NOT_SIGNING,
  lastAttempt = false,
  namedInHeader = new Set(recipients.map((r) => r.recipient)),
): OutboundPlan {
  return planOutbound({ recipients, signing }, { lastAttempt, namedInHeader });
}

describe('planning an outbound message', () => {
  const formCases: Array<{
    name: string;
    keys: RecipientKeys;
    form: string;
    fingerprint?: string;
    code?: string;
    why?: RegExp;
  }> = [
    {
      name: 'a recipient with a valid certificate only gets S/MIME',
      keys: keysOf('a@buerger.example', [validCertificate('CERT-A')]),
      form: 'smime',
      fingerprint: 'CERT-A',
    },
    {
      name: 'a recipient with an approved, usable OpenPGP key only gets OpenPGP',
      keys: keysOf('b@buerger.example', [], [pgpKey('PGP-B')]),
      form: 'pgp',
      fingerprint: 'PGP-B',
    },
    {
      name: 'a recipient with both gets S/MIME',
      keys: keysOf('c@buerger.example', [validCertificate('CERT-C')], [pgpKey('PGP-C')]),
      form: 'smime',
      fingerprint: 'CERT-C',
    },
    {
      name: 'a recipient with neither goes to the portal',
      keys: keysOf('d@buerger.example'),
      form: 'portal',
      code: 'ENCRYPT_NO_KEY',
      why: /no certificate and no OpenPGP key/,
    },
    {
      name: 'a recipient whose certificate is invalid but whose OpenPGP key is usable gets OpenPGP',
      keys: keysOf('e@buerger.example', [invalidCertificate('CERT-E', 'EXPIRED (…)')], [pgpKey('PGP-E')]),
      form: 'pgp',
      fingerprint: 'PGP-E',
    },
    {
      name: 'the first certificate that validates is used, after one that does not',
      keys: keysOf('f@buerger.example', [invalidCertificate('CERT-F1', 'REVOKED (…)'), validCertificate('CERT-F2')]),
      form: 'smime',
      fingerprint: 'CERT-F2',
    },
    {
      name: 'a recipient with an invalid certificate only goes to the portal, the validation code in the reason',
      keys: keysOf('g@buerger.example', [invalidCertificate('CERT-G-0123456789', 'REVOKED (on the CRL)')]),
      form: 'portal',
      code: 'ENCRYPT_CERTIFICATE_INVALID',
      why: /certificate CERT-G-012345678 invalid: REVOKED \(on the CRL\)/,
    },
    {
      name: 'a recipient with a pending OpenPGP key only goes to the portal',
      keys: keysOf('h@buerger.example', [], [pgpKey('PGP-H', 'pending')]),
      form: 'portal',
      code: 'ENCRYPT_PGP_KEY_PENDING',
      why: /OpenPGP key PGP-H pending approval/,
    },
    {
      name: 'a recipient with an unusable approved key goes to the portal with its problems',
      keys: keysOf('i@buerger.example', [], [pgpKey('PGP-I', 'approved', ['PGP_KEY_EXPIRED'])]),
      form: 'portal',
      code: 'ENCRYPT_PGP_KEY_UNUSABLE',
      why: /OpenPGP key PGP-I unusable: PGP_KEY_EXPIRED/,
    },
    {
      name: 'a rejected OpenPGP key is never mentioned: the portal, for want of any key',
      keys: keysOf('j@buerger.example', [], [pgpKey('PGP-J', 'rejected')]),
      form: 'portal',
      code: 'ENCRYPT_NO_KEY',
    },
    {
      name: 'every refusal is in the reason, the code is the first one',
      keys: keysOf('k@buerger.example', [invalidCertificate('CERT-K', 'EXPIRED (…)')], [pgpKey('PGP-K', 'pending')]),
      form: 'portal',
      code: 'ENCRYPT_CERTIFICATE_INVALID',
      why: /certificate CERT-K invalid: EXPIRED .*; OpenPGP key PGP-K pending approval/,
    },
  ];
  for (const c of formCases) {
    it(c.name, () => {
      const [planned] = plan([c.keys]).recipients;
      assert.equal(planned?.form, c.form);
      if (planned?.form === 'portal') {
        assert.equal(planned.code, c.code);
        if (c.why) assert.match(planned.why, c.why);
      } else {
        assert.equal(planned?.fingerprint, c.fingerprint);
      }
    });
  }

  it('groups recipients sharing a form into one copy each, S/MIME first, and keeps the envelope order', () => {
    const planned = plan([
      keysOf('pgp-1@buerger.example', [], [pgpKey('PGP-1')]),
      keysOf('rsa@buerger.example', [validCertificate('CERT-RSA')]),
      keysOf('nobody@buerger.example'),
      keysOf('ec@buerger.example', [validCertificate('CERT-EC', 'ec')]),
      keysOf('pgp-2@buerger.example', [], [pgpKey('PGP-2')]),
    ]);
    assert.deepEqual(
      planned.recipients.map((r) => [r.recipient, r.form]),
      [
        ['pgp-1@buerger.example', 'pgp'],
        ['rsa@buerger.example', 'smime'],
        ['nobody@buerger.example', 'portal'],
        ['ec@buerger.example', 'smime'],
        ['pgp-2@buerger.example', 'pgp'],
      ],
    );
    assert.deepEqual(
      planned.copies.map((copy) => [copy.form, copy.recipients.map((r) => r.recipient)]),
      [
        ['smime', ['rsa@buerger.example', 'ec@buerger.example']],
        ['pgp', ['pgp-1@buerger.example', 'pgp-2@buerger.example']],
      ],
    );
    assert.deepEqual(
      planned.portal.map((r) => r.recipient),
      ['nobody@buerger.example'],
    );
  });

  it('gives every recipient not named in To or Cc a copy of its own, per form, and lets the named ones share one', () => {
    const planned = plan(
      [
        keysOf('to-1@buerger.example', [validCertificate('CERT-1', 'rsa', GCM_AND_OAEP)]),
        keysOf('bcc-1@buerger.example', [validCertificate('CERT-B1', 'rsa', GCM_AND_OAEP)]),
        keysOf('Cc-2@buerger.example', [validCertificate('CERT-2')]),
        keysOf('bcc-2@buerger.example', [], [pgpKey('PGP-B2')]),
        keysOf('to-3@buerger.example', [], [pgpKey('PGP-3')]),
        keysOf('bcc-3@buerger.example', [validCertificate('CERT-B3')]),
      ],
      NOT_SIGNING,
      false,
      new Set(['to-1@buerger.example', 'cc-2@buerger.example', 'to-3@buerger.example']),
    );
    assert.deepEqual(
      planned.copies.map((copy) => [copy.form, copy.recipients.map((r) => r.recipient)]),
      [
        ['smime', ['to-1@buerger.example', 'Cc-2@buerger.example']],
        ['smime', ['bcc-1@buerger.example']],
        ['smime', ['bcc-3@buerger.example']],
        ['pgp', ['bcc-2@buerger.example']],
        ['pgp', ['to-3@buerger.example']],
      ],
    );
    // Each copy has its own cipher: the Bcc recipient that announced GCM gets it, the shared copy cannot.
    assert.deepEqual(
      planned.copies.map((copy) => (copy.form === 'smime' ? copy.contentCipher : copy.form)),
      ['aes-256-cbc', 'aes-256-gcm', 'aes-256-cbc', 'pgp', 'pgp'],
    );
  });

  it('makes no copy for a form nobody gets', () => {
    assert.deepEqual(plan([keysOf('nobody@buerger.example')]).copies, []);
    assert.deepEqual(
      plan([keysOf('a@buerger.example', [], [pgpKey('PGP-A')])]).copies.map((c) => c.form),
      ['pgp'],
    );
  });

  const cipherCases: Array<{
    name: string;
    certificates: CheckedCertificate[];
    content: string;
    transports: string[];
  }> = [
    {
      name: 'the S/MIME copy is AES-256-GCM with OAEP when every recipient announced both',
      certificates: [validCertificate('A', 'rsa', GCM_AND_OAEP), validCertificate('B', 'rsa', GCM_AND_OAEP)],
      content: 'aes-256-gcm',
      transports: ['rsa-oaep-sha256', 'rsa-oaep-sha256'],
    },
    {
      name: 'one recipient without GCM makes the whole shared copy AES-256-CBC, key transport stays per recipient',
      certificates: [validCertificate('A', 'rsa', GCM_AND_OAEP), validCertificate('B', 'rsa', null)],
      content: 'aes-256-cbc',
      transports: ['rsa-oaep-sha256', 'rsa-pkcs1v15'],
    },
    {
      name: 'an EC certificate gets ECDH',
      certificates: [validCertificate('A', 'ec', GCM_AND_OAEP)],
      content: 'aes-256-gcm',
      transports: ['ecdh'],
    },
  ];
  for (const c of cipherCases) {
    it(c.name, () => {
      const planned = plan(c.certificates.map((cert, i) => keysOf(`r${i}@buerger.example`, [cert])));
      const [copy] = planned.copies;
      assert.ok(copy?.form === 'smime');
      assert.equal(copy.contentCipher, c.content);
      assert.deepEqual(
        copy.recipients.map((r) => [r.contentCipher, r.keyTransport]),
        c.transports.map((t) => [c.content, t]),
      );
    });
  }

  it('waits (throws RevocationUnavailableError) when a certificate lacks only its revocation, and refuses it on the last attempt', () => {
    const keys = keysOf(
      'crl@buerger.example',
      [invalidCertificate('CERT-CRL', 'REVOCATION_UNKNOWN (timeout)', 'CRL server timed out')],
      [pgpKey('PGP-CRL')],
    );
    assert.throws(
      () => plan([keysOf('a@buerger.example', [validCertificate('CERT-A')]), keys]),
      (err: unknown) =>
        err instanceof RevocationUnavailableError &&
        err.code === 'ENCRYPT_REVOCATION_UNAVAILABLE' &&
        /CRL server timed out/.test(err.message),
    );
    const [planned] = plan([keys], NOT_SIGNING, true).recipients;
    assert.equal(planned?.form, 'pgp', 'on the last attempt the next form is chosen');
  });

  it('does not wait for revocation when another certificate of the recipient validates', () => {
    const keys = keysOf('crl@buerger.example', [
      invalidCertificate('CERT-CRL', 'REVOCATION_UNKNOWN (timeout)', 'CRL server timed out'),
      validCertificate('CERT-OK'),
    ]);
    const [planned] = plan([keys]).recipients;
    assert.equal(planned?.form === 'smime' && planned.fingerprint, 'CERT-OK');
  });
});

describe('planning the signature of each copy', () => {
  const smimeKey: SmimeSigner = {
    ok: true,
    fingerprint: 'AGENCY-SMIME',
    key: { certificate: Buffer.from('agency certificate'), privateKey: Buffer.from('agency key') },
    privateKey: Buffer.from('agency key'),
  };
  const pgpSigningKey: PgpSigner = { ok: true, fingerprint: 'AGENCY-PGP', key: { armored: 'agency private key' } };
  const noKey = (form: string) => ({
    ok: false as const,
    code: 'ENCRYPT_NO_SIGNING_KEY',
    reason: `no ${form} key held for clerk@amt.example`,
  });
  const bothForms = [
    keysOf('smime@buerger.example', [validCertificate('CERT')]),
    keysOf('pgp@buerger.example', [], [pgpKey('PGP')]),
    keysOf('portal@buerger.example'),
  ];

  const cases: Array<{ name: string; signing: SenderSigning; smime: unknown; pgp: unknown }> = [
    {
      name: 'signing off: neither copy is signed, and there is nothing to report',
      signing: { signs: false },
      smime: { kind: 'off' },
      pgp: { kind: 'off' },
    },
    {
      name: 'signing on with both keys: each copy is signed with the key of its form',
      signing: { signs: true, smime: smimeKey, pgp: pgpSigningKey },
      smime: { kind: 'sign', key: smimeKey.key },
      pgp: { kind: 'sign', key: pgpSigningKey.key },
    },
    {
      name: 'signing on without keys: both copies go unsigned, each with the reason',
      signing: { signs: true, smime: noKey('smime'), pgp: noKey('pgp') },
      smime: { kind: 'not-signed', why: noKey('smime') },
      pgp: { kind: 'not-signed', why: noKey('pgp') },
    },
    {
      name: 'signing on with only an OpenPGP key: the OpenPGP copy is signed, the S/MIME copy says why not',
      signing: { signs: true, smime: noKey('smime'), pgp: pgpSigningKey },
      smime: { kind: 'not-signed', why: noKey('smime') },
      pgp: { kind: 'sign', key: pgpSigningKey.key },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { copies } = plan(bothForms, c.signing);
      assert.deepEqual(copies.find((copy) => copy.form === 'smime')?.signing, c.smime);
      assert.deepEqual(copies.find((copy) => copy.form === 'pgp')?.signing, c.pgp);
    });
  }

  it('plans no signature for a form without recipients, so a missing key of that form is not reported', () => {
    const { copies } = plan([keysOf('pgp@buerger.example', [], [pgpKey('PGP')])], {
      signs: true,
      smime: noKey('smime'),
      pgp: pgpSigningKey,
    });
    assert.deepEqual(
      copies.map((copy) => [copy.form, copy.signing.kind]),
      [['pgp', 'sign']],
    );
  });
});
