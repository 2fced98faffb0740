// Reading form fields: a field is a string of bounded length or absent (never an array or object).

/** The form field `name` as a string (at most `max` characters), or '' when missing, repeated or too long. */
export function formField(body: unknown, name: string, max = 1000): string {
  const value = (body as Record<string, unknown> | null | undefined)?.[name];
  return typeof value === 'string' && value.length <= max ? value : '';
}

/**
 * A field of a form in either encoding: urlencoded (a string) or multipart with attachFieldsToBody (an object with
 * its `value`); '' when missing, repeated or longer than `max`.
 */
export function multipartField(body: unknown, name: string, max: number): string {
  const raw = (body as Record<string, unknown> | null | undefined)?.[name];
  const value =
    raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as { value?: unknown }).value : raw;
  return typeof value === 'string' && value.length <= max ? value : '';
}
