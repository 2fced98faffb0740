import type { MessageTrace } from '@smgw/trace';
import { oneLine } from './terminal-safe.ts';

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
    for (const route of routesOf(e.data)) lines.push(`${' '.repeat(37)}route ${route}`);
  }
  return `${lines.map(oneLine).join('\n')}\n`;
}

/**
 * The routes ingest chose (`message.received`: data.envelopes[].itinerary), e.g. `inbound: scan → verify → deliver
 * (encrypt skipped: plain)`, so the trace says why a stage is missing. Nothing for events without them.
 */
function routesOf(data: unknown): string[] {
  const { envelopes, encryptStage } = (data ?? {}) as { envelopes?: unknown; encryptStage?: unknown };
  if (!Array.isArray(envelopes)) return [];
  const encrypt = encryptStage as { skipped?: unknown; reasons?: unknown } | undefined;
  const why =
    encrypt?.skipped === true
      ? ' (encrypt skipped: plain)'
      : Array.isArray(encrypt?.reasons) && encrypt.reasons.length > 0
        ? ` (encrypt: ${encrypt.reasons.join(', ')})`
        : '';
  return envelopes.flatMap((envelope: { direction?: unknown; itinerary?: unknown }) => {
    if (!Array.isArray(envelope?.itinerary)) return [];
    const stages = envelope.itinerary.length > 0 ? envelope.itinerary.join(' → ') : '(none)';
    return [`${String(envelope.direction)}: ${stages}${envelope.direction === 'inbound' ? why : ''}`];
  });
}
