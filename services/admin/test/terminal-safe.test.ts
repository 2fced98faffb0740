// The CLI prints what strangers wrote (a harvested key's user id, a registration's text): no control character of
// theirs reaches the operator's terminal.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { terminalSafe } from '../src/terminal-safe.ts';

describe('terminalSafe', () => {
  it('escapes escape sequences, other controls and bidirectional overrides; keeps line feed, tab and text', () => {
    assert.equal(
      terminalSafe('Amt \u001b]0;pwned\u0007\u001b[2Kok\r\n\tü€ \u202eevil\u2066\u009b31m'),
      'Amt \\u001b]0;pwned\\u0007\\u001b[2Kok\\u000d\n\tü€ \\u202eevil\\u2066\\u009b31m',
    );
    assert.equal(terminalSafe('plain text\n'), 'plain text\n');
  });
});
