// findPgpKeysInMessage on messages carrying gpg-made keys as application/pgp-keys attachments and Autocrypt
// headers: candidates for the key directory (stored as pending), never secret material.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { findPgpKeysInMessage, parseAutocryptHeader } from '../src/openpgp/index.ts';
import { createGpgHome, type GpgHome } from './openpgp-gpg.ts';

function folded(base64: string): string {
  return (base64.match(/.{1,72}/g) ?? []).join('\r\n ');
}

function messageWith(extraHeaders: string[], parts: { type: string; body: string }[]): Buffer {
  const boundary = 'b-keys-1';
  const head = [
    'From: Sender <Sender@Example.net>',
    'To: agency@example.gov',
    'Subject: keys',
    ...extraHeaders,
    'MIME-Version: 1.0',
  ];
  const body = [
    `--${boundary}\r\nContent-Type: text/plain\r\n\r\nHello\r\n`,
    ...parts.map(
      (part) =>
        `--${boundary}\r\nContent-Type: ${part.type}\r\nContent-Disposition: attachment; filename="key.asc"\r\n\r\n${part.body.replace(/\r?\n/g, '\r\n')}\r\n`,
    ),
    `--${boundary}--\r\n`,
  ];
  return Buffer.from(
    `${head.join('\r\n')}\r\nContent-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n${body.join('')}`,
  );
}

describe('findPgpKeysInMessage', () => {
  let gpg: GpgHome;
  let sender: { fingerprint: string; armored: string; binary: Buffer };
  let other: { fingerprint: string; armored: string; secret: string };

  before(async () => {
    gpg = await createGpgHome();
    const senderFingerprint = await gpg.generateKey({ kind: 'cv25519', name: 'Sender', email: 'sender@example.net' });
    sender = {
      fingerprint: senderFingerprint,
      armored: await gpg.exportPublic(senderFingerprint),
      binary: (await gpg.run(['--export', senderFingerprint])).stdout,
    };
    const otherFingerprint = await gpg.generateKey({ kind: 'rsa3072', name: 'Other', email: 'other@example.net' });
    other = {
      fingerprint: otherFingerprint,
      armored: await gpg.exportPublic(otherFingerprint),
      secret: await gpg.exportSecret(otherFingerprint),
    };
  });

  after(async () => {
    await gpg?.close();
  });

  it('finds the key of an Autocrypt header whose addr is the From address', async () => {
    const header = `Autocrypt: addr=sender@example.net; prefer-encrypt=mutual; keydata=\r\n ${folded(sender.binary.toString('base64'))}`;
    const found = await findPgpKeysInMessage(messageWith([header], []));
    assert.equal(found.length, 1);
    assert.equal(found[0]?.source, 'autocrypt');
    assert.equal(found[0]?.address, 'sender@example.net');
    assert.equal(found[0]?.fingerprint, sender.fingerprint);
    const key = await openpgp.readKey({ armoredKey: found[0]?.armored ?? '' });
    assert.equal(key.getFingerprint().toUpperCase(), sender.fingerprint);
  });

  it('ignores Autocrypt headers for another address or with an unknown critical attribute', async () => {
    const keydata = folded(sender.binary.toString('base64'));
    const headers = [
      `Autocrypt: addr=someone-else@example.net; keydata=\r\n ${keydata}`,
      `Autocrypt: addr=sender@example.net; future-critical=yes; keydata=\r\n ${keydata}`,
    ];
    assert.deepEqual(await findPgpKeysInMessage(messageWith(headers, [])), []);
  });

  it('finds armored keys in application/pgp-keys attachments, deduplicated by fingerprint', async () => {
    const found = await findPgpKeysInMessage(
      messageWith(
        [],
        [
          { type: 'application/pgp-keys', body: sender.armored },
          { type: 'application/pgp-keys', body: other.armored },
          { type: 'application/octet-stream', body: sender.armored },
        ],
      ),
    );
    assert.deepEqual(found.map((k) => k.fingerprint).sort(), [sender.fingerprint, other.fingerprint].sort());
    assert.ok(found.every((k) => k.source === 'attachment'));
  });

  it('ignores an attached private key, armored or binary, since its secret travelled in clear', async () => {
    const binarySecret = (await gpg.run(['--export-secret-keys', other.fingerprint])).stdout;
    const message = messageWith([], [{ type: 'application/pgp-keys', body: other.secret }]);
    assert.deepEqual(await findPgpKeysInMessage(message), []);
    const binary = messageWith([], [])
      .toString()
      .replace(
        '--b-keys-1--',
        `--b-keys-1\r\nContent-Type: application/pgp-keys\r\nContent-Transfer-Encoding: base64\r\n\r\n${binarySecret.toString('base64')}\r\n--b-keys-1--`,
      );
    assert.deepEqual(await findPgpKeysInMessage(Buffer.from(binary)), []);
  });

  it('finds a binary key in an application/pgp-keys attachment', async () => {
    const message = messageWith([], [])
      .toString()
      .replace(
        '--b-keys-1--',
        `--b-keys-1\r\nContent-Type: application/pgp-keys\r\nContent-Transfer-Encoding: base64\r\n\r\n${sender.binary.toString('base64')}\r\n--b-keys-1--`,
      );
    const found = await findPgpKeysInMessage(Buffer.from(message));
    assert.deepEqual(
      found.map((k) => k.fingerprint),
      [sender.fingerprint],
    );
  });

  it('skips unreadable keys and finds nothing in a message without keys', async () => {
    const broken = messageWith([], [{ type: 'application/pgp-keys', body: 'not a key at all' }]);
    assert.deepEqual(await findPgpKeysInMessage(broken), []);
    const plain = Buffer.from('From: a@example.net\r\nSubject: hi\r\n\r\nHello\r\n');
    assert.deepEqual(await findPgpKeysInMessage(plain), []);
  });

  describe('each way a client attaches a key', () => {
    const crlf = (text: string) => text.replace(/\r?\n/g, '\r\n');
    const base64Lines = (bytes: Buffer) => (bytes.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
    const head = 'From: Sender <sender@example.net>\r\nTo: agency@example.gov\r\nMIME-Version: 1.0\r\n';
    const multipart = (boundary: string, parts: string[]) =>
      `${parts.map((part) => `--${boundary}\r\n${part}\r\n`).join('')}--${boundary}--\r\n`;
    const text = 'Content-Type: text/plain; charset=utf-8\r\n\r\nHallo';
    const cases: Array<{ what: string; message: () => string; found: boolean }> = [
      {
        what: 'an .asc file as application/octet-stream in base64',
        message: () =>
          `${head}Content-Type: multipart/mixed; boundary="b"\r\n\r\n${multipart('b', [
            text,
            `Content-Type: application/octet-stream; name="0xABC.asc"\r\nContent-Disposition: attachment; filename="0xABC.asc"\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64Lines(Buffer.from(sender.armored))}`,
          ])}`,
        found: true,
      },
      {
        what: 'application/pgp-keys in quoted-printable',
        message: () =>
          `${head}Content-Type: multipart/mixed; boundary="b"\r\n\r\n${multipart('b', [
            text,
            `Content-Type: application/pgp-keys\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${crlf(sender.armored).replace(/=/g, '=3D').replace(/\r\n/g, '=\r\n\r\n')}`,
          ])}`,
        found: true,
      },
      {
        what: 'the whole message as application/pgp-keys',
        message: () => `${head}Content-Type: application/pgp-keys\r\n\r\n${crlf(sender.armored)}`,
        found: true,
      },
      {
        what: 'a key beside the text of a PGP/MIME signed message (Thunderbird), nested two deep',
        message: () =>
          `${head}Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; boundary="s"\r\n\r\n${multipart(
            's',
            [
              `Content-Type: multipart/mixed; boundary="m"\r\n\r\n${multipart('m', [
                `Content-Type: multipart/alternative; boundary="a"\r\n\r\n${multipart('a', [text, 'Content-Type: text/html\r\n\r\n<p>Hallo</p>'])}`,
                `Content-Type: application/pgp-keys; name="OpenPGP_0xABC.asc"\r\nContent-Disposition: attachment; filename="OpenPGP_0xABC.asc"\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64Lines(Buffer.from(sender.armored))}`,
              ])}`,
              'Content-Type: application/pgp-signature; name="OpenPGP_signature.asc"\r\n\r\n-----BEGIN PGP SIGNATURE-----\r\n\r\nAA==\r\n-----END PGP SIGNATURE-----',
            ],
          )}`,
        found: true,
      },
      {
        what: 'a text file attached (text/plain, disposition attachment)',
        message: () =>
          `${head}Content-Type: multipart/mixed; boundary="b"\r\n\r\n${multipart('b', [
            text,
            `Content-Type: text/plain\r\nContent-Disposition: attachment; filename="key.txt"\r\n\r\n${crlf(sender.armored)}`,
          ])}`,
        found: true,
      },
      {
        what: 'a named part without Content-Type (a reader types it by its name)',
        message: () =>
          `${head}Content-Type: multipart/mixed; boundary="b"\r\n\r\n${multipart('b', [
            text,
            `Content-Disposition: inline; filename="key.asc"\r\n\r\n${crlf(sender.armored)}`,
          ])}`,
        found: true,
      },
      {
        what: 'a key in an attached message (message/rfc822 as attachment)',
        message: () =>
          `${head}Content-Type: multipart/mixed; boundary="b"\r\n\r\n${multipart('b', [
            text,
            `Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\nFrom: sender@example.net\r\nSubject: mein Schlüssel\r\n\r\n${crlf(sender.armored)}`,
          ])}`,
        found: true,
      },
      {
        what: 'a key attached to an inline forwarded message',
        message: () =>
          `${head}Content-Type: multipart/mixed; boundary="b"\r\n\r\n${multipart('b', [
            text,
            `Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\nFrom: sender@example.net\r\nContent-Type: multipart/mixed; boundary="i"\r\n\r\n${multipart('i', [text, `Content-Type: application/pgp-keys\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64Lines(sender.binary)}`])}`,
          ])}`,
        found: true,
      },
      {
        what: 'an application/pgp-keys part in a message of bare LF line ends whose multipart is never closed',
        message: () =>
          `${head}Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n${text}\r\n--b\r\nContent-Type: application/pgp-keys\r\n\r\n${crlf(sender.armored)}\r\n`.replace(
            /\r\n/g,
            '\n',
          ),
        found: true,
      },
      {
        what: 'no key pasted into the text of the message (the text is not an attachment; as before)',
        message: () => `${head}Content-Type: text/plain\r\n\r\nMein Schlüssel:\r\n${crlf(sender.armored)}`,
        found: false,
      },
    ];
    for (const { what, message, found } of cases) {
      it(`finds ${what}`, async () => {
        const keys = await findPgpKeysInMessage(Buffer.from(message(), 'utf8'));
        assert.deepEqual(
          keys.map((k) => [k.fingerprint, k.source]),
          found ? [[sender.fingerprint, 'attachment']] : [],
        );
      });
    }
  });

  it('parses an Autocrypt header and refuses one without keydata', () => {
    const parsed = parseAutocryptHeader('Autocrypt: addr=A@Example.net; _note=x; keydata=AAEC\r\n AwQ=');
    assert.equal(parsed?.addr, 'a@example.net');
    assert.deepEqual([...(parsed?.keydata ?? [])], [0, 1, 2, 3, 4]);
    assert.equal(parseAutocryptHeader('Autocrypt: addr=a@example.net'), undefined);
  });
});
