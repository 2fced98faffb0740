import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';

export interface SunkMessage {
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
  /** performance.now() when the message was complete (for latency measurements). */
  receivedAt: number;
  session: { remoteAddress: string; secure: boolean };
}

export interface SmtpSink {
  port: number;
  messages: SunkMessage[];
  /**
   * Make the next RCPT answers fail: a function from recipient (and the transaction's envelope sender, '' for the
   * null sender of a recipient verification probe) to an SMTP reply, or undefined to accept.
   */
  rejectRecipient: ((rcpt: string, mailFrom: string) => { code: number; message: string } | undefined) | undefined;
  close(): Promise<void>;
}

/**
 * A real SMTP server on 127.0.0.1 that records every message it accepts (the agencies' relay or a smarthost). With
 * `tls`, it offers STARTTLS with that key and certificate; without, it offers none.
 */
export async function startSmtpSink(
  options: { port?: number; tls?: { key: Buffer; cert: Buffer } } = {},
): Promise<SmtpSink> {
  const sink: SmtpSink = {
    port: 0,
    messages: [],
    rejectRecipient: undefined,
    close: async () => {},
  };
  const server = new SMTPServer({
    authOptional: true,
    ...(options.tls ? { key: options.tls.key, cert: options.tls.cert } : { disabledCommands: ['STARTTLS'] }),
    disableReverseLookup: true,
    logger: false,
    size: 200 * 1024 * 1024,
    onRcptTo(address, session, callback) {
      const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      const refusal = sink.rejectRecipient?.(address.address, mailFrom);
      if (!refusal) return callback();
      const err = new Error(refusal.message) as Error & { responseCode: number };
      err.responseCode = refusal.code;
      return callback(err);
    },
    onData(stream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        sink.messages.push({
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
          receivedAt: performance.now(),
          session: { remoteAddress: session.remoteAddress, secure: session.secure },
        });
        callback(null, `Ok: sunk ${sink.messages.length}`);
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  sink.port = (server.server.address() as AddressInfo).port;
  sink.close = () => new Promise((resolve) => server.close(() => resolve()));
  return sink;
}
