// What the CLI prints comes partly from strangers: a harvested OpenPGP user id, a certificate's subject, the text of
// a portal registration, a remote server's reply in a trace. Control characters in it would reach the operator's
// terminal as commands (escape sequences that move the cursor, rewrite or hide lines, set the window title),
// bidirectional overrides would reorder what the operator reads, and invisible characters (zero-width spaces, tags)
// would make two different addresses or names look the same. Each is shown as a \u escape instead.

/**
 * Control characters but line feed and tab, format characters (bidirectional controls, zero-width characters, soft
 * hyphen, tags) and the line and paragraph separators.
 */
const UNSAFE = /(?![\t\n])[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

/** `text` with every character of UNSAFE escaped (`\u001b`, `\u{e0041}` beyond four hex digits). */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const hex = (c.codePointAt(0) ?? 0).toString(16);
    return hex.length > 4 ? `\\u{${hex}}` : `\\u${hex.padStart(4, '0')}`;
  });
}

/**
 * `text` as one line: a line break in a stranger's text (a certificate's subject, a registration's fields, a reason
 * quoting a remote reply) would print a line of its own that reads as another entry. Shown as `\n`.
 */
export function oneLine(text: string): string {
  return text.replace(/\r\n|\r|\n/g, '\\n');
}
