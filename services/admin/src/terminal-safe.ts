// What the CLI prints comes partly from strangers: a harvested OpenPGP user id, a certificate's subject, the text of
// a portal registration, a remote server's reply in a trace. Control characters in it would reach the operator's
// terminal as commands (escape sequences that move the cursor, rewrite or hide lines, set the window title), and
// bidirectional overrides would reorder what the operator reads. Each is shown as a \u escape instead.

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every control character but line feed and tab, and every bidirectional control, escaped. */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`);
}

/**
 * `text` as one line: a line break in a stranger's text (a certificate's subject, a registration's fields, a reason
 * quoting a remote reply) would print a line of its own that reads as another entry. Shown as `\n`.
 */
export function oneLine(text: string): string {
  return text.replace(/\r\n|\r|\n/g, '\\n');
}
