// A raw SMTP client for tests: byte-exact control over what is sent (smuggling probes, early talkers, pipelining),
// replies read as they come. Not a test file itself.
import net from 'node:net';
import tls from 'node:tls';

export interface Reply {
  code: number;
  lines: string[];
  /** Every line of the reply joined with \n, codes included ("250-a\n250 b"). */
  text: string;
}

export class SmtpTestClient {
  private socket: net.Socket;
  private buffered = '';
  private replies: Reply[] = [];
  private waiters: ((reply: Reply | Error) => void)[] = [];
  private closedError: Error | undefined;
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    this.attach(socket);
  }

  /**
   * Connects; does not wait for the greeting (read it with readReply()). `localAddress` is the client address the
   * server sees: any of 127.0.0.0/8 works on Linux's loopback, so a test can be many clients.
   */
  static connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<SmtpTestClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host, localAddress });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new SmtpTestClient(socket));
      });
    });
  }

  /** Connects (from `localAddress`, see connect) and reads the greeting. */
  static async open(port: number, localAddress?: string): Promise<{ client: SmtpTestClient; greeting: Reply }> {
    const client = await SmtpTestClient.connect(port, '127.0.0.1', localAddress);
    return { client, greeting: await client.readReply() };
  }

  /**
   * A submission session from `localAddress` logged in as `user`: EHLO, STARTTLS, EHLO, AUTH PLAIN; throws with the
   * reply when a step is refused.
   */
  static async openAuthenticated(
    port: number,
    localAddress: string,
    user: string,
    password: string,
  ): Promise<SmtpTestClient> {
    const { client, greeting } = await SmtpTestClient.open(port, localAddress);
    const expect = (reply: Reply, code: number) => {
      if (reply.code !== code) throw new Error(`expected ${code}, got ${reply.code} ${reply.text}`);
    };
    expect(greeting, 220);
    expect(await client.command('EHLO agency.example'), 250);
    expect(await client.startTls(), 220);
    expect(await client.command('EHLO agency.example'), 250);
    const plain = Buffer.from(`\u0000${user}\u0000${password}`).toString('base64');
    expect(await client.command(`AUTH PLAIN ${plain}`), 235);
    return client;
  }

  private attach(socket: net.Socket) {
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('error', () => {});
    socket.once('close', () => {
      this.closedError = new Error(`connection closed; unread: ${JSON.stringify(this.buffered)}`);
      for (const waiter of this.waiters.splice(0)) waiter(this.closedError);
    });
  }

  private onData(data: Buffer) {
    this.buffered += data.toString('latin1');
    for (;;) {
      const lines: string[] = [];
      let rest = this.buffered;
      let complete = false;
      for (;;) {
        const end = rest.indexOf('\r\n');
        if (end < 0) break;
        const line = rest.slice(0, end);
        rest = rest.slice(end + 2);
        lines.push(line);
        if (!/^\d{3}-/.test(line)) {
          complete = true;
          break;
        }
      }
      if (!complete) return;
      this.buffered = rest;
      const reply = { code: Number(lines[0]?.slice(0, 3)), lines, text: lines.join('\n') };
      const waiter = this.waiters.shift();
      if (waiter) waiter(reply);
      else this.replies.push(reply);
    }
  }

  readReply(): Promise<Reply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      this.waiters.push((reply) => (reply instanceof Error ? reject(reply) : resolve(reply)));
    });
  }

  writeRaw(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  async command(line: string): Promise<Reply> {
    this.writeRaw(`${line}\r\n`);
    return this.readReply();
  }

  /** The TLS socket after startTls() (to renegotiate, read the cipher); undefined before. */
  get tlsSocket(): tls.TLSSocket | undefined {
    return this.socket instanceof tls.TLSSocket ? this.socket : undefined;
  }

  /**
   * STARTTLS and the TLS handshake (any certificate accepted; `options` for versions and ciphers); then EHLO again is
   * up to the caller. A refused handshake rejects. `injected` goes in the clear in the same write as STARTTLS, as a
   * man in the middle would add it (STARTTLS command injection).
   */
  async startTls(options: tls.ConnectionOptions = {}, injected = ''): Promise<Reply> {
    this.writeRaw(`STARTTLS\r\n${injected}`);
    const reply = await this.readReply();
    if (reply.code !== 220) return reply;
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = tls.connect({ socket: plain, rejectUnauthorized: false, servername: 'localhost', ...options });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.buffered = '';
    secure.on('data', (data: Buffer) => this.onData(data));
    secure.on('error', () => {});
    return reply;
  }

  /**
   * MAIL, RCPT…, DATA, the raw body (dot-stuffing and the final <CRLF>.<CRLF> are up to the caller when `raw`),
   * returning every reply. Stops at the first refusal before DATA.
   */
  async sendMail(options: { from: string; to: string[]; body: string | Buffer; raw?: boolean; mailParams?: string }) {
    const mail = await this.command(`MAIL FROM:<${options.from}>${options.mailParams ? ` ${options.mailParams}` : ''}`);
    const rcpt: Reply[] = [];
    if (mail.code !== 250) return { mail, rcpt, data: undefined, final: undefined };
    for (const to of options.to) rcpt.push(await this.command(`RCPT TO:<${to}>`));
    if (!rcpt.some((r) => r.code === 250)) return { mail, rcpt, data: undefined, final: undefined };
    const data = await this.command('DATA');
    if (data.code !== 354) return { mail, rcpt, data, final: undefined };
    const body = typeof options.body === 'string' ? Buffer.from(options.body, 'latin1') : options.body;
    this.writeRaw(options.raw ? body : Buffer.concat([dotStuff(body), Buffer.from('.\r\n')]));
    const final = await this.readReply();
    return { mail, rcpt, data, final };
  }

  async quit(): Promise<void> {
    if (!this.closedError) {
      this.writeRaw('QUIT\r\n');
    }
    this.socket.end();
    await this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Dot-stuffs a CRLF message body (a line starting with '.' gets another) and makes sure it ends in CRLF. */
export function dotStuff(body: Buffer): Buffer {
  let text = body.toString('latin1');
  if (!text.endsWith('\r\n')) text += '\r\n';
  return Buffer.from(text.replace(/(^|\r\n)\./g, '$1..'), 'latin1');
}
