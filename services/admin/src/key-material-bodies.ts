// Content types of key material uploads, as users send them: PEM and armored texts under their own types or as
// text/plain, or as `curl --data-binary @file` sends any file (application/x-www-form-urlencoded: taken as the raw
// body, never form-decoded, as base64 holds '+'); PKCS#12 as bytes. Parsers are registered per routes plugin
// (fastify scopes them to the plugin); each route names the types it takes in `config.bodyTypes` (body-types.ts).
import type { FastifyInstance } from 'fastify';

export const PEM_TYPE = 'application/x-pem-file';
export const PEM_CHAIN_TYPE = 'application/pem-certificate-chain';
export const PGP_KEY_TYPE = 'application/pgp-keys';
export const PKCS12_TYPE = 'application/x-pkcs12';
export const OCTET_STREAM_TYPE = 'application/octet-stream';
export const TEXT_TYPE = 'text/plain';
/** curl's content-type for --data and --data-binary. */
export const CURL_DEFAULT_TYPE = 'application/x-www-form-urlencoded';

/** PEM certificates (trust anchors, recipient certificates). */
export const PEM_BODY_TYPES: readonly string[] = [PEM_TYPE, PEM_CHAIN_TYPE, TEXT_TYPE, CURL_DEFAULT_TYPE];
/** An armored OpenPGP public key. */
export const ARMORED_KEY_BODY_TYPES: readonly string[] = [PGP_KEY_TYPE, TEXT_TYPE, CURL_DEFAULT_TYPE];
/** An agency's private key: PKCS#12 bytes, or an armored OpenPGP private key. */
export const PRIVATE_KEY_BODY_TYPES: readonly string[] = [
  PKCS12_TYPE,
  OCTET_STREAM_TYPE,
  PGP_KEY_TYPE,
  TEXT_TYPE,
  CURL_DEFAULT_TYPE,
];

export function acceptKeyMaterialBodies(api: FastifyInstance): void {
  // text/plain is fastify's own (a string).
  api.addContentTypeParser([PEM_TYPE, PEM_CHAIN_TYPE, PGP_KEY_TYPE], { parseAs: 'string' }, (_req, body, done) =>
    done(null, body),
  );
  // Bytes: curl's default type carries PEM text and PKCS#12 files alike; the route decides what it got.
  api.addContentTypeParser(
    [CURL_DEFAULT_TYPE, PKCS12_TYPE, OCTET_STREAM_TYPE],
    { parseAs: 'buffer' },
    (_req, body, done) => done(null, body),
  );
}

/** The body as text, or undefined when there is none (JSON, nothing, an empty body). */
export function textBody(body: unknown): string | undefined {
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : body;
  return typeof text === 'string' && text.length > 0 ? text : undefined;
}

/** Whether a body or file is an armored OpenPGP block (a PKCS#12 file never starts like that). */
export function looksArmoredOpenPgp(body: string | Buffer): boolean {
  const start = typeof body === 'string' ? body.slice(0, 64) : body.subarray(0, 64).toString('latin1');
  return start.includes('-----BEGIN PGP');
}
