import type { QuarantineEntry } from '@smgw/quarantine';
import { oneLine } from './terminal-safe.ts';

/** One line per entry, newest first, as an operator scans a list in a terminal. */
export function formatQuarantineList(entries: QuarantineEntry[]): string {
  if (entries.length === 0) return 'no quarantined messages\n';
  const lines = entries.map((e) =>
    [
      e.id,
      e.quarantinedAt.slice(0, 19).replace('T', ' '),
      e.direction.padEnd(9),
      e.verdict.padEnd(10),
      e.releasedAt ? `released by ${e.releasedBy}` : 'open',
      `${e.finding}  <${e.mailFrom}> → ${e.recipients.join(', ')}`,
    ].join('  '),
  );
  return `${lines.map(oneLine).join('\n')}\n`;
}

/** One entry in full (never the content: the API does not have it). */
export function formatQuarantineEntry(e: QuarantineEntry): string {
  const lines = [
    `quarantine ${e.id}`,
    `message    ${e.messageId}`,
    `direction  ${e.direction}`,
    `verdict    ${e.verdict}: ${e.finding}${e.detail ? `  (${e.detail})` : ''}`,
    `from       <${e.mailFrom}>`,
    `to         ${e.recipients.map((r) => `<${r}>`).join(', ')}`,
    `since      ${e.quarantinedAt}`,
    `expires    ${e.expiresAt}`,
  ];
  if (e.releasedAt) {
    lines.push(`released   ${e.releasedAt} by ${e.releasedBy}${e.releaseReason ? `: ${e.releaseReason}` : ''}`);
  } else {
    lines.push('released   no');
  }
  return `${lines.map(oneLine).join('\n')}\n`;
}
