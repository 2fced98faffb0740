// Content types of key material uploads. PEM and armored texts arrive as strings, PKCS#12 as bytes; JSON stays
// fastify's own. Registered per routes plugin (fastify scopes content-type parsers to the plugin).
import type { FastifyInstance } from 'fastify';

export const PEM_TYPES = ['application/x-pem-file', 'application/pem-certificate-chain'] as const;
export const PGP_KEY_TYPE = 'application/pgp-keys';
export const PKCS12_TYPE = 'application/x-pkcs12';

export function acceptKeyMaterialBodies(api: FastifyInstance): void {
  api.addContentTypeParser([...PEM_TYPES, PGP_KEY_TYPE], { parseAs: 'string' }, (_req, body, done) => done(null, body));
  api.addContentTypeParser(PKCS12_TYPE, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
}

/** The body as text, or undefined when it is not a text body (JSON, bytes, nothing). */
export function textBody(body: unknown): string | undefined {
  return typeof body === 'string' && body.length > 0 ? body : undefined;
}
