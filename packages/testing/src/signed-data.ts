// Mail carrying CMS SignedData, as a stranger sends it: `openssl cms -sign -nodetach` with a self-made certificate
// (made once per process in a temporary folder, removed at exit). For the tests of what is scanned inside signatures.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let signerDir: string | undefined;

function signer(): string {
  if (signerDir) return signerDir;
  const dir = mkdtempSync(join(tmpdir(), 'smgw-signed-data-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'k.pem',
      '-out',
      'c.pem',
      '-days',
      '30',
      '-subj',
      '/CN=Absender/emailAddress=absender@extern.example',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  signerDir = dir;
  return dir;
}

/** An opaque (enveloping) CMS SignedData, DER, whose eContent is `content` byte for byte. */
export function signedDataOf(content: Buffer): Buffer {
  const dir = signer();
  const input = join(dir, `content-${process.pid}-${Math.random().toString(36).slice(2)}.bin`);
  writeFileSync(input, content);
  try {
    return execFileSync(
      'openssl',
      ['cms', '-sign', '-nodetach', '-binary', '-in', input, '-signer', 'c.pem', '-inkey', 'k.pem', '-outform', 'DER'],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024 },
    );
  } finally {
    rmSync(input, { force: true });
  }
}

function base64Lines(bytes: Buffer): string {
  return (bytes.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

const FROM = 'From: absender@extern.example\r\nTo: stelle@behoerde.example\r\nMIME-Version: 1.0\r\n';

/** A MIME entity (no top-level fields): text and one base64 attachment. */
export function entityWithAttachment(name: string, bytes: Buffer): Buffer {
  return Buffer.from(
    'Content-Type: multipart/mixed; boundary="I"\r\n\r\n--I\r\nContent-Type: text/plain\r\n\r\nAnbei die Rechnung.\r\n' +
      `--I\r\nContent-Type: application/octet-stream; name="${name}"\r\n` +
      `Content-Disposition: attachment; filename="${name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
      `${base64Lines(bytes)}\r\n--I--\r\n`,
  );
}

/** An opaque-signed S/MIME message (application/pkcs7-mime; smime-type=signed-data) around the DER `signedData`. */
export function opaqueSignedMail(signedData: Buffer, subject = 'Rechnung'): Buffer {
  return Buffer.from(
    `${FROM}Subject: ${subject}\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"\r\n` +
      'Content-Disposition: attachment; filename="smime.p7m"\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
      `${base64Lines(signedData)}\r\n`,
  );
}

/** A plain message with a text part and one base64 attachment (e.g. `vertrag.pdf.p7m`, a CAdES-signed document). */
export function mailWithAttachmentNamed(name: string, bytes: Buffer, subject = 'Vertrag'): Buffer {
  return Buffer.concat([Buffer.from(`${FROM}Subject: ${subject}\r\n`), entityWithAttachment(name, bytes)]);
}
