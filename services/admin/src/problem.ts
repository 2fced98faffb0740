/** Error body of every API failure: a stable code and a sentence. */
export function problem(code: string, message: string) {
  return { error: { code, message } };
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
