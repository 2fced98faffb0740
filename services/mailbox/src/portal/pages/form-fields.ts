// Reading urlencoded form fields: a field is a string of bounded length or absent (never an array or object).

/** The form field `name` as a string (at most `max` characters), or '' when missing, repeated or too long. */
export function formField(body: unknown, name: string, max = 1000): string {
  const value = (body as Record<string, unknown> | null | undefined)?.[name];
  return typeof value === 'string' && value.length <= max ? value : '';
}
