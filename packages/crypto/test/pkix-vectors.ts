// Loading of the path-validation vectors (NIST PKITS, BoringSSL verify-chain) for the pkix tests.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's own testdata/ folder (sources and licences in its README.md). */
export const TESTDATA = fileURLToPath(new URL('../../../testdata/', import.meta.url));
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
