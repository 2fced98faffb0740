import type { MessageTrace } from '@smgw/trace';

/** A message trace as an operator reads it in a terminal. */
export function formatTrace(t: MessageTrace): string {
  const lines = [
    `message    ${t.id}  (trace ${t.traceId})`,
    `direction  ${t.direction}`,
    `from       <${t.mailFrom}>  via ${t.client.ip ?? '?'} helo ${t.client.helo ?? '?'}${t.client.tls ? ' TLS' : ''}${t.client.user ? ` user ${t.client.user}` : ''}`,
    `received   ${t.receivedAt}  size ${t.size} bytes`,
  ];
  if (t.relatesTo) lines.push(`relates to ${t.relatesTo}`);
  lines.push('', 'recipients');
  for (const r of t.recipients) lines.push(`  ${r.state.padEnd(11)} ${r.address}${r.detail ? `  (${r.detail})` : ''}`);
  lines.push('', 'events');
  for (const e of t.events) {
    const who = e.recipient ? ` ${e.recipient}` : '';
    const why = [e.code, e.reason].filter(Boolean).join(': ');
    lines.push(`  ${e.at}  ${e.stage.padEnd(8)} ${e.event}${who}  → ${e.outcome}${why ? `  ${why}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}
