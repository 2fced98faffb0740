import { STATUS_CODES } from 'node:http';

/** Error body of every API failure: a stable code and a sentence. */
export function problem(code: string, message: string) {
  return { error: { code, message } };
}

/**
 * The code of a failure that has no more specific one: the status's own name (400 BAD_REQUEST, 404 NOT_FOUND,
 * 413 PAYLOAD_TOO_LARGE, 415 UNSUPPORTED_MEDIA_TYPE …), so the code and the status always agree; INTERNAL_ERROR
 * for every 5xx.
 */
export function codeOfStatus(status: number): string {
  if (status >= 500) return 'INTERNAL_ERROR';
  return (STATUS_CODES[status] ?? 'Bad Request').toUpperCase().replace(/[^A-Z0-9]+/g, '_');
}

/** JSON schema of that body, for the routes' response schemas. */
export const problemSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
} as const;
