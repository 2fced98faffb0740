// The STARTTLS certificate: SMGW_TLS_CERT_FILE + SMGW_TLS_KEY_FILE, or (when neither is set) a self-signed one
// made with the openssl command at start, kept in memory only. Never smtp-server's built-in certificate: its
// private key is public.
import { execFile } from 'node:child_process';
import { constants, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * What both listeners allow of TLS (BSI TR-03108-1 for mail transport, cipher suites from TR-02102-2 and Mozilla's
 * "intermediate" list): smtp-server's defaults (minVersion TLSv1, Node's cipher list with HIGH) let an RSA
 * certificate of the operator's be used for RSA key transport without forward secrecy and for CBC suites with SHA-1,
 * and let a client renegotiate (three more handshakes of the server key per connection, outside the command count).
 * - TLS 1.2 at least: stated here, not left to OpenSSL's security level (which refuses 1.0 and 1.1 today).
 * - TLS 1.2 suites: ECDHE only (forward secrecy), AEAD first, then CBC with SHA-256/384; ECDSA and RSA keys alike.
 *   TLS 1.3 keeps Node's suites (the list names none).
 * - No renegotiation (SMTP never needs it): OpenSSL refuses the ClientHello before the server key signs anything.
 * - No session tickets: a TLS 1.2 ticket holds the session's master secret encrypted under Node's ticket key, which
 *   lives as long as the process, so whoever later reads that key from memory (or a core dump) could decrypt every
 *   recorded TLS 1.2 session since the start. Without tickets (and with no session cache: Node keeps none unless a
 *   server listens for newSession) no session is resumed; SMTP gains little from resumption (one signature of the
 *   server key per session, which SMGW_*_TLS_SESSIONS_PER_MINUTE bounds). TLS 1.3 resumption, which OpenSSL allows
 *   only with a fresh key exchange (psk_dhe_ke), goes with it: OpenSSL then sends stateful tickets that nothing
 *   resumes.
 */
export const SMTP_TLS_POLICY = {
  minVersion: 'TLSv1.2',
  ciphers: [
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
    'ECDHE-ECDSA-AES128-SHA256',
    'ECDHE-RSA-AES128-SHA256',
    'ECDHE-ECDSA-AES256-SHA384',
    'ECDHE-RSA-AES256-SHA384',
  ].join(':'),
  secureOptions: constants.SSL_OP_NO_RENEGOTIATION | constants.SSL_OP_NO_TICKET,
} as const;

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
