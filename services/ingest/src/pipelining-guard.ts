// Command pipelining rules for unauthenticated clients (RFC 2920 §3.1, RFC 5321 §4.1.4), as Postfix enforces them
// with smtpd_forbid_unauth_pipelining: DATA must end its group (the client waits for the 354 before sending content),
// and nothing may follow STARTTLS before the handshake. Spam software and SMTP smuggling attempts send blindly;
// a real MTA never does. The guard watches the raw bytes before smtp-server's parser sees them and says when the
// client broke a rule; smtp-ingest then answers 554 5.5.0 and closes, as Postfix does.
// The message content itself is not inspected, only followed to its final dot: commands pipelined after it (RFC 2920
// allows them) obey the same rules. Every command gets one reply, so the guard counts them: the wait for the 354 ends
// with the reply to DATA itself, not with the 250 to a MAIL FROM sent in the same group before it.

export type PipeliningViolation = 'CONTENT_BEFORE_354' | 'DATA_NOT_LAST_IN_GROUP' | 'BYTES_AFTER_STARTTLS';

type State =
  /** Reading commands; `carry` holds an incomplete line. */
  | 'command'
  /** DATA was sent; the client must wait for our 354 (or a refusal): `repliesToData` replies from now. */
  | 'awaiting-354'
  /** Message content until its final dot (`tail` holds the last bytes, the dot may come in the next chunk). */
  | 'data'
  /** STARTTLS was sent; our 220 starts the handshake. */
  | 'awaiting-tls'
  /** TLS is up: the raw socket carries TLS records from now on, nothing to read here. */
  | 'off';

/** Longest partial command line kept between chunks (smtp-server refuses longer command lines itself). */
const MAX_CARRY = 16 * 1024;
/** How DATA ends, as smtp-server ends it (smtp-stream.js): CRLF . CRLF, or `.` CRLF as the content's first line. */
const END_OF_DATA = Buffer.from('\r\n.\r\n', 'latin1');
const DOT_LINE = Buffer.from('.\r\n', 'latin1');
const NO_BYTES = Buffer.alloc(0);

export class PipeliningGuard {
  private state: State = 'command';
  private carry = '';
  /** Command lines read whose replies have not been sent yet (every command gets one reply). */
  private unanswered = 0;
  /** In 'awaiting-354' and 'awaiting-tls': how many of those replies come before (and with) DATA's or STARTTLS's. */
  private repliesToData = 0;
  /** In 'data': the content's last bytes (to find the final dot across chunks), and whether none came yet. */
  private tail: Buffer = NO_BYTES;
  private atDataStart = false;

  /** A chunk from the client, before the parser reads it: the violation it commits, if any. */
  received(chunk: Uint8Array): PipeliningViolation | undefined {
    if (this.state === 'off') return undefined;
    if (this.state === 'awaiting-354') return 'CONTENT_BEFORE_354';
    if (this.state === 'awaiting-tls') return 'BYTES_AFTER_STARTTLS';
    // A view of the chunk, not a copy: the content of every message passes here.
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.state === 'data') {
      // Commands may follow the final dot in the same chunk (RFC 2920); they obey the same rules as any others.
      const after = this.afterFinalDot(bytes);
      if (after === undefined) return undefined;
      this.state = 'command';
      this.carry = '';
      // The reply to the message is still to come, before those of the commands behind it.
      this.unanswered++;
      return this.commands(after.toString('latin1'));
    }
    return this.commands(bytes.toString('latin1'));
  }

  /** We sent a reply with this code. */
  replied(code: number): void {
    this.unanswered = Math.max(0, this.unanswered - 1);
    if (this.state === 'awaiting-354' || this.state === 'awaiting-tls') {
      // The replies to the commands before DATA (or STARTTLS) in its group come first; only its own decides.
      this.repliesToData--;
      if (this.repliesToData > 0) return;
      if (this.state === 'awaiting-tls') this.state = code === 220 ? 'off' : 'command';
      else if (code !== 354) this.state = 'command';
      else {
        this.state = 'data';
        this.tail = NO_BYTES;
        this.atDataStart = true;
      }
    } else if (this.state === 'data') {
      // A reply while the content goes on (its end not seen here): the parser is back to commands.
      this.state = 'command';
      this.unanswered = 0;
    }
  }

  private commands(text: string): PipeliningViolation | undefined {
    text = this.carry + text;
    let start = 0;
    for (let lf = text.indexOf('\n'); lf !== -1; lf = text.indexOf('\n', start)) {
      const line = text.slice(start, lf).replace(/\r$/, '');
      start = lf + 1;
      this.unanswered++;
      // The verb as smtp-server reads it: up to the first space. It starts data mode for `DATA x` too (it ignores
      // arguments), so a whole line compared with DATA let content pipelined behind `DATA x` through.
      const verb = (line.split(' ')[0] ?? '').toUpperCase();
      if (verb === 'DATA' || verb === 'STARTTLS') {
        if (start < text.length) return verb === 'DATA' ? 'DATA_NOT_LAST_IN_GROUP' : 'BYTES_AFTER_STARTTLS';
        this.state = verb === 'DATA' ? 'awaiting-354' : 'awaiting-tls';
        this.repliesToData = this.unanswered;
        this.carry = '';
        return undefined;
      }
    }
    this.carry = text.slice(start).slice(-MAX_CARRY);
    return undefined;
  }

  /**
   * The bytes after the final dot when the content ends in `bytes`; undefined while it goes on. The content is
   * searched where it lies: only the few bytes a final dot may begin in are carried to the next chunk.
   */
  private afterFinalDot(bytes: Buffer): Buffer | undefined {
    const tail = this.tail;
    if (this.atDataStart) {
      // `.` CRLF as the very first line ends the content at once (a first line `..` is a stuffed dot).
      const start = Buffer.concat([tail, bytes.subarray(0, DOT_LINE.length)]);
      if (start.length < DOT_LINE.length && DOT_LINE.subarray(0, start.length).equals(start)) {
        this.tail = start;
        return undefined;
      }
      this.atDataStart = false;
      if (start.subarray(0, DOT_LINE.length).equals(DOT_LINE)) return bytes.subarray(DOT_LINE.length - tail.length);
    }
    // A final dot that begins in the carried bytes, then one within this chunk.
    const joint = Buffer.concat([tail, bytes.subarray(0, END_OF_DATA.length - 1)]);
    const acrossAt = tail.length > 0 ? joint.indexOf(END_OF_DATA) : -1;
    if (acrossAt !== -1) return bytes.subarray(acrossAt + END_OF_DATA.length - tail.length);
    const at = bytes.indexOf(END_OF_DATA);
    if (at !== -1) return bytes.subarray(at + END_OF_DATA.length);
    const keep = END_OF_DATA.length - 1;
    this.tail =
      bytes.length >= keep
        ? Buffer.from(bytes.subarray(bytes.length - keep))
        : Buffer.concat([tail, bytes]).subarray(-keep);
    return undefined;
  }
}
