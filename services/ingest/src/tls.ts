// The STARTTLS certificate: SMGW_TLS_CERT_FILE + SMGW_TLS_KEY_FILE, or (when neither is set) a self-signed one
// made with the openssl command at start, kept in memory only. Never smtp-server's built-in certificate: its
// private key is public.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export class TlsSetupError extends Error {
  readonly code = 'TLS_SETUP_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TlsSetupError';
  }
}

export interface TlsCredentials {
  key: Buffer;
  cert: Buffer;
  selfSigned: boolean;
}

export async function loadTlsCredentials(options: {
  certFile: string | undefined;
  keyFile: string | undefined;
  hostname: string;
}): Promise<TlsCredentials> {
  if (options.certFile && options.keyFile) {
    try {
      const [cert, key] = await Promise.all([readFile(options.certFile), readFile(options.keyFile)]);
      return { cert, key, selfSigned: false };
    } catch (err) {
      throw new TlsSetupError(`cannot read the TLS certificate or key: ${(err as Error).message}`, { cause: err });
    }
  }
  if (options.certFile || options.keyFile) {
    throw new TlsSetupError('SMGW_TLS_CERT_FILE and SMGW_TLS_KEY_FILE must be set together');
  }
  return generateSelfSigned(options.hostname);
}

/** A P-256 key and a one-year self-signed certificate for `hostname`, through the openssl command line. */
export async function generateSelfSigned(hostname: string): Promise<TlsCredentials> {
  const name = /^[A-Za-z0-9.-]{1,253}$/.test(hostname) ? hostname : 'localhost';
  const dir = await mkdtemp(join(tmpdir(), 'smgw-ingest-tls-'));
  try {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    await execFileAsync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyPath,
        '-out',
        certPath,
        '-days',
        '365',
        '-subj',
        `/CN=${name}`,
        '-addext',
        `subjectAltName=DNS:${name}`,
      ],
      { timeout: 30_000 },
    );
    const [key, cert] = await Promise.all([readFile(keyPath), readFile(certPath)]);
    return { key, cert, selfSigned: true };
  } catch (err) {
    throw new TlsSetupError(`cannot make a self-signed certificate with openssl: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** When the first certificate of a PEM file expires (for the expiry gauge); undefined if it cannot be parsed. */
export function certificateNotAfter(pem: Buffer): Date | undefined {
  try {
    const notAfter = new Date(new X509Certificate(pem).validTo);
    return Number.isNaN(notAfter.getTime()) ? undefined : notAfter;
  } catch {
    return undefined;
  }
}
