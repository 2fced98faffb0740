// Command pipelining rules for unauthenticated clients (RFC 2920 §3.1, RFC 5321 §4.1.4), as Postfix enforces them
// with smtpd_forbid_unauth_pipelining: DATA must end its group (the client waits for the 354 before sending content),
// and nothing may follow STARTTLS before the handshake. Spam software and SMTP smuggling attempts send blindly;
// a real MTA never does. The guard watches the raw bytes before smtp-server's parser sees them and says when the
// client broke a rule; smtp-ingest then answers 554 5.5.0 and closes, as Postfix does.
// The message content itself is not inspected: between the 354 and smtp-server's reply to the data the guard
// lets everything through (commands pipelined after the final dot are allowed by RFC 2920).

export type PipeliningViolation = 'CONTENT_BEFORE_354' | 'DATA_NOT_LAST_IN_GROUP' | 'BYTES_AFTER_STARTTLS';

type State =
  /** Reading commands; `carry` holds an incomplete line. */
  | 'command'
  /** DATA was sent; the client must wait for our 354 (or a refusal). */
  | 'awaiting-354'
  /** Message content until our reply to it. */
  | 'data'
  /** STARTTLS was sent; our 220 starts the handshake. */
  | 'awaiting-tls'
  /** TLS is up: the raw socket carries TLS records from now on, nothing to read here. */
  | 'off';

/** Longest partial command line kept between chunks (smtp-server refuses longer command lines itself). */
const MAX_CARRY = 16 * 1024;

export class PipeliningGuard {
  private state: State = 'command';
  private carry = '';

  /** A chunk from the client, before the parser reads it: the violation it commits, if any. */
  received(chunk: Uint8Array): PipeliningViolation | undefined {
    if (this.state === 'off' || this.state === 'data') return undefined;
    if (this.state === 'awaiting-354') return 'CONTENT_BEFORE_354';
    if (this.state === 'awaiting-tls') return 'BYTES_AFTER_STARTTLS';
    const text = this.carry + Buffer.from(chunk).toString('latin1');
    let start = 0;
    for (let lf = text.indexOf('\n'); lf !== -1; lf = text.indexOf('\n', start)) {
      const line = text.slice(start, lf).replace(/\r$/, '');
      start = lf + 1;
      // The verb as smtp-server reads it: up to the first space. It starts data mode for `DATA x` too (it ignores
      // arguments), so a whole line compared with DATA let content pipelined behind `DATA x` through.
      const verb = (line.split(' ')[0] ?? '').toUpperCase();
      if (verb === 'DATA' || verb === 'STARTTLS') {
        if (start < text.length) return verb === 'DATA' ? 'DATA_NOT_LAST_IN_GROUP' : 'BYTES_AFTER_STARTTLS';
        this.state = verb === 'DATA' ? 'awaiting-354' : 'awaiting-tls';
        this.carry = '';
        return undefined;
      }
    }
    this.carry = text.slice(start).slice(-MAX_CARRY);
    return undefined;
  }

  /** We sent a reply with this code. */
  replied(code: number): void {
    if (this.state === 'awaiting-354') this.state = code === 354 ? 'data' : 'command';
    else if (this.state === 'data') this.state = 'command';
    else if (this.state === 'awaiting-tls') this.state = code === 220 ? 'off' : 'command';
  }
}
