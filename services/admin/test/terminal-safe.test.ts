// The CLI prints what strangers wrote (a harvested key's user id, a registration's text): no control character of
// theirs reaches the operator's terminal.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { QuarantineEntry } from '@smgw/quarantine';
import { formatRegistration } from '../src/cli-portal.ts';
import { formatQuarantineEntry, formatQuarantineList } from '../src/format-quarantine.ts';
import { oneLine, terminalSafe } from '../src/terminal-safe.ts';

describe('terminalSafe', () => {
  it('escapes escape sequences, other controls and bidirectional overrides; keeps line feed, tab and text', () => {
    assert.equal(
      terminalSafe('Amt \u001b]0;pwned\u0007\u001b[2Kok\r\n\tü€ \u202eevil\u2066\u009b31m'),
      'Amt \\u001b]0;pwned\\u0007\\u001b[2Kok\\u000d\n\tü€ \\u202eevil\\u2066\\u009b31m',
    );
    assert.equal(terminalSafe('plain text\n'), 'plain text\n');
  });

  it('escapes what a terminal shows as nothing or as a line break: zero-width, line and paragraph separators, tags', () => {
    assert.equal(
      terminalSafe('amt\u200b@behoerde.example \u2060\ufeff\u00ad a\u2028b\u2029c \u{e0041}'),
      'amt\\u200b@behoerde.example \\u2060\\ufeff\\u00ad a\\u2028b\\u2029c \\u{e0041}',
    );
  });
});

describe('what the CLI prints of a stranger, one line per entry', () => {
  const forged = '2026-12-06T10:00:00Z  deliver  recipient.delivered a@behoerde.example';

  it('shows line breaks as \\n', () => {
    assert.equal(oneLine(`a\r\nb\nc\rd`), 'a\\nb\\nc\\nd');
  });

  it('keeps a registration on its line whatever the registering stranger typed', () => {
    const line = formatRegistration({
      id: 'r1',
      agencyName: `Amt\n${forged}`,
      contactName: 'X',
      contactEmail: 'x@example.org',
      contactPhone: null,
      domains: ['amt.example'],
      note: null,
      state: 'pending',
      createdAt: '2026-12-06T10:00:00Z',
      decidedBy: null,
      decisionNote: null,
      agencyId: null,
    });
    assert.equal(line.split('\n').length, 1);
  });

  it('keeps a quarantine entry on its lines whatever its finding or detail holds', () => {
    const entry = {
      id: 'q1',
      messageId: 'm1',
      direction: 'inbound',
      verdict: 'suspicious',
      finding: `Smgw.Broken.Archive\n${forged}`,
      detail: `zip at /2\r\n${forged}`,
      mailFrom: 'a@example.org',
      recipients: ['b@behoerde.example'],
      quarantinedAt: '2026-12-06T10:00:00.000Z',
      expiresAt: '2027-01-05T10:00:00.000Z',
      releasedAt: null,
      releasedBy: null,
      releaseReason: null,
    } as unknown as QuarantineEntry;
    assert.equal(formatQuarantineList([entry]).split('\n').length, 2);
    assert.equal(formatQuarantineEntry(entry).split('\n').length, 10);
  });
});
