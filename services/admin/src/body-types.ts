// Which content types a route takes: `config.bodyTypes` on the route, JSON when it says nothing. A body of another
// type is refused with 415 UNSUPPORTED_MEDIA_TYPE naming the accepted ones, whether fastify has a parser for that
// type in the route's plugin (this hook) or not (its own 415, which the error handler words the same way).
import type { FastifyReply, FastifyRequest } from 'fastify';
import { problem } from './problem.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Media types the route's body may have, lower-case, without parameters. */
    bodyTypes?: readonly string[];
  }
}

export const JSON_BODY_TYPES: readonly string[] = ['application/json'];

/** The media type of the request body, lower-case and without parameters (`; charset=…`). */
export function mediaTypeOf(req: FastifyRequest): string | undefined {
  return req.headers['content-type']?.split(';')[0]?.trim().toLowerCase() || undefined;
}

export function acceptedBodyTypes(req: FastifyRequest): readonly string[] {
  return req.routeOptions.config?.bodyTypes ?? JSON_BODY_TYPES;
}

export function unsupportedMediaType(req: FastifyRequest) {
  const given = mediaTypeOf(req);
  return problem(
    'UNSUPPORTED_MEDIA_TYPE',
    `${given ? `content-type ${given} is not accepted here` : 'the body has no content-type'}; ` +
      `send one of: ${acceptedBodyTypes(req).join(', ')}`,
  );
}

/** preValidation hook: a parsed body whose type the route does not take is a 415, before its schema is checked. */
export async function refuseUnacceptedBodyType(req: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (req.body === undefined) return;
  const given = mediaTypeOf(req);
  if (given !== undefined && acceptedBodyTypes(req).includes(given)) return;
  return reply.code(415).send(unsupportedMediaType(req));
}
