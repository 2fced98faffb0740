// Loading of the shared path-validation vectors (NIST PKITS, BoringSSL verify-chain) for the pkix tests.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The design documents' shared/ folder lies beside the repository (CI copies it there too). */
export const TESTDATA =
  process.env.SMGW_TESTDATA ?? fileURLToPath(new URL('../../../../shared/testdata/', import.meta.url));
export const PKITS_DIR = join(TESTDATA, 'nist-pkits');
export const BORINGSSL_DIR = join(TESTDATA, 'boringssl-verify-chain');

export function readDer(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** Certificates of a PEM file, in order. */
export function readPemCertificates(path: string): Uint8Array[] {
  const text = readFileSync(path, 'utf8');
  const blocks = text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g);
  return [...blocks].map((match) => new Uint8Array(Buffer.from((match[1] ?? '').replace(/\s+/g, ''), 'base64')));
}

export function listFiles(dir: string, suffix: string): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith(suffix))
    .sort();
}
