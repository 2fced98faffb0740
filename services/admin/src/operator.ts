// Who made a change through the admin API: the X-SMGW-Operator header names a person (the API has one shared
// token), kept in logs, traces and audit rows. One definition for every route that changes something.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { problem } from './problem.ts';

/** Who made a change when no X-SMGW-Operator header names a person: the admin API has one shared token. */
export const DEFAULT_OPERATOR = 'admin-token';

/** A short name or e-mail address; nothing that could break a log line or a trace. */
export const OPERATOR_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$';

/** The headers schema of a route that takes X-SMGW-Operator. */
export const operatorHeaders = {
  type: 'object',
  properties: { 'x-smgw-operator': { type: 'string', pattern: OPERATOR_PATTERN } },
} as const;

/**
 * A preValidation hook refusing a non-boolean flag (also a missing one, when `required`) with 400 BAD_REQUEST before
 * the schema, whose type coercion would turn "yes" or 1 into a boolean.
 */
export function strictBoolean(name: string, options: { required?: boolean } = {}) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const flag = (req.body as Record<string, unknown> | undefined)?.[name];
    if ((options.required || flag !== undefined) && typeof flag !== 'boolean') {
      return reply.code(400).send(problem('BAD_REQUEST', `body/${name} must be true or false`));
    }
  };
}

/**
 * A preValidation hook refusing a field that is not a JSON array (when present) with 400 BAD_REQUEST before the
 * schema, whose type coercion would take a lone string for an array of one.
 */
export function strictArrays(...names: string[]) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const body = req.body as Record<string, unknown> | undefined;
    const bad = names.find((name) => body?.[name] !== undefined && !Array.isArray(body[name]));
    if (bad) return reply.code(400).send(problem('BAD_REQUEST', `body/${bad} must be an array`));
  };
}
