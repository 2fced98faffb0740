// SPF, DKIM and DMARC of mail on the MX port (mailauth), evaluated while the message streams into the blob store:
// SPF starts at once (client address, HELO, MAIL FROM); the DKIM verifier is fed every chunk the blob store takes
// (a tee with backpressure, so memory stays at a chunk or two plus the header block); DMARC follows when the body
// has ended. The message is stored only once the outcome is known: a DMARC `p=reject` failure ends the upload with
// MailAuthRefusal DMARC_REJECT (nothing is committed, the client gets 550 5.7.1).
//
// A DNS failure is never a pass and, by default, never a refusal: the methods it touched say `temperror`
// (SMGW_DNS_FAILURE=defer answers 451 when DMARC itself could not be decided).
import { Resolver } from 'node:dns/promises';
import { PassThrough } from 'node:stream';
import { listedAddresses, MAX_HEADER_BYTES } from '@smgw/mime';
import { dkimVerify, dmarc, spf } from 'mailauth';
import { shownDomain } from './sender-policy.ts';

/** mailauth's resolver: node:dns `resolve(name, type)` shapes, errors with node:dns codes (ENOTFOUND, ETIMEOUT, …). */
export type DnsLookup = (name: string, type: string) => Promise<never>;

export interface MailAuthSettings {
  /** SMGW_HOSTNAME: the authserv-id of our Authentication-Results. */
  hostname: string;
  /** SMGW_DMARC_REJECT: refuse DMARC failures of `p=reject` domains (else only mark them). */
  dmarcReject: boolean;
  /** SMGW_DNS_FAILURE: what a DNS failure while deciding DMARC means. */
  dnsFailure: 'mark' | 'defer';
  lookup: DnsLookup;
}

/** What the client told us before DATA. */
export interface SmtpIdentity {
  ip: string;
  helo: string;
  /** MAIL FROM; '' for the null reverse-path (SPF then checks the HELO name, RFC 7208 §2.4). */
  mailFrom: string;
}

export interface MailAuthResult {
  spf: string;
  /** One result per DKIM signature (mailauth reports an unsigned message as one `none`). */
  dkim: string[];
  /** One result per From domain (normally one). */
  dmarc: string[];
  /** What the gateway does with the message: accept it, or refuse it for this reason (MailAuthRefusal). */
  decision: 'accept' | Exclude<MailAuthRefusal['code'], 'HEADER_TOO_LARGE'>;
  /** Why it refuses (for logs), e.g. "dmarc=fail for sender.example (p=reject)". */
  reason?: string;
  /** The `Authentication-Results` field in our name, folded, ending in CRLF. */
  field: string;
}

/**
 * Why mail authentication stops a message; the SMTP reply has the same code (smtp-replies.ts), MAIL_AUTH_FAILED
 * answers 451 like any failure on our side.
 * - DMARC_REJECT: a From domain with `p=reject` failed DMARC (SMGW_DMARC_REJECT), or too many From domains: 550 5.7.1
 * - DMARC_TEMPERROR: DNS failed while deciding DMARC and SMGW_DNS_FAILURE=defer: 451
 * - MAIL_AUTH_FAILED: the verifier itself failed (not DNS): never a pass, so a message that trips it cannot skip DMARC
 * - HEADER_TOO_LARGE: the header block is too long to be held for DKIM: refused, never judged unchecked
 */
export class MailAuthRefusal extends Error {
  readonly code: 'DMARC_REJECT' | 'DMARC_TEMPERROR' | 'MAIL_AUTH_FAILED' | 'HEADER_TOO_LARGE';
  constructor(code: MailAuthRefusal['code'], message: string) {
    super(message);
    this.name = 'MailAuthRefusal';
    this.code = code;
  }
}

/**
 * DNS questions of one method for one message; beyond, a question fails like a DNS error (temperror). Each method
 * has its own budget, so a message with many DKIM signatures cannot use up the questions its DMARC check needs.
 * SPF also keeps RFC 7208's limits (10 lookups, 2 void lookups) inside.
 */
export const MAX_LOOKUPS_PER_METHOD = 30;
/** More distinct From domains than this: refused (each would need its own DMARC check; legitimate mail has one). */
export const MAX_FROM_DOMAINS = 5;
/**
 * What the DKIM signatures of one message may ask the verifier to do; more is refused (DMARC_REJECT, as for too many
 * From domains) when the header block ends, before the body is read. Real mail has one to three signatures of a few
 * dozen signed fields and one body hash. mailauth's costs: each distinct c=, a= and l= hashes the whole body once more
 * (1,000 of them on a 2 MB body: 5 s of CPU); each signature copies the field list and each name in its h= searches
 * it (50 signatures of 10,000 names over 9,000 fields: 54 s).
 */
export const MAX_DKIM_BODY_HASHES = 5;
export const MAX_DKIM_SIGNATURES = 50;
export const MAX_DKIM_SIGNED_FIELD_NAMES = 2000;
/** Results of one method shown in the header (a message may carry many DKIM signatures). */
const MAX_RESULTS_SHOWN = 10;

/** A resolver for mailauth: the configured servers (or the system's), each query bounded by `timeoutMs`. */
export function createDnsLookup(options: { servers: string[]; timeoutMs: number }): DnsLookup {
  const resolver = new Resolver({ timeout: options.timeoutMs, tries: 1 });
  if (options.servers.length > 0) resolver.setServers(options.servers);
  return (name, type) => resolver.resolve(name, type) as Promise<never>;
}

/** At most `limit` questions; the next ones fail like a DNS error (temperror), so one message cannot flood DNS. */
function withLookupBudget(lookup: DnsLookup, limit: number): DnsLookup {
  let asked = 0;
  return (name, type) => {
    asked += 1;
    if (asked > limit) {
      return Promise.reject(Object.assign(new Error(`more than ${limit} DNS lookups`), { code: 'ELOOKUPLIMIT' }));
    }
    return lookup(name, type);
  };
}

/**
 * Starts evaluating one message: `write` each chunk of it (header block first) as it is stored, then `finish`.
 * `abort` when the upload failed, so nothing waits on a message that never ends.
 */
export function startMailAuthentication(settings: MailAuthSettings, identity: SmtpIdentity): MessageAuthentication {
  return new MessageAuthentication(settings, identity);
}

export class MessageAuthentication {
  private readonly input = new PassThrough({ highWaterMark: 64 * 1024 });
  private readonly settings: MailAuthSettings;
  private readonly spfResult: ReturnType<typeof spf>;
  private readonly dkimResult: ReturnType<typeof dkimVerify>;
  /** The header block so far (Latin-1), until its blank line; at most MAX_HEADER_BYTES. */
  private header = '';
  private inHeader = true;
  /** The header block names no DKIM signature: the verifier got the header block alone and ends there. */
  private bodyIgnored = false;
  /** Every address of every From field, group members included (fromFieldAddresses), once the header block ended. */
  private fromAddresses: string[] | undefined;

  constructor(settings: MailAuthSettings, identity: SmtpIdentity) {
    this.settings = settings;
    this.spfResult = spf({
      ip: identity.ip,
      helo: identity.helo,
      // mailauth checks postmaster@<helo> for the null sender (RFC 7208 §2.4) when `sender` is empty.
      ...(identity.mailFrom ? { sender: identity.mailFrom } : {}),
      mta: settings.hostname,
      resolver: withLookupBudget(settings.lookup, MAX_LOOKUPS_PER_METHOD),
    });
    this.dkimResult = dkimVerify(this.input, {
      resolver: withLookupBudget(settings.lookup, MAX_LOOKUPS_PER_METHOD),
      sender: identity.mailFrom || undefined,
    });
    // Both settle in finish(); until then a rejection must not count as unhandled. A verifier that failed reads no
    // more: its input is closed, so write() never waits for a drain that cannot come (finish() reports temperror).
    this.spfResult.catch(() => {});
    this.dkimResult.catch(() => this.input.destroy());
  }

  /** Feeds one chunk to the DKIM verifier; resolves when it can take more. */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.bodyIgnored) return;
    if (this.inHeader) {
      const unsignedHeaderBytes = this.watchHeaderBlock(chunk);
      if (unsignedHeaderBytes !== undefined) {
        // No signature to check, so no body hash to compute: mailauth would still run through every byte of the body
        // (its line-ending pass alone was ~6 % of ingest's CPU at 100 KB). It gets the header block with its blank
        // line and the end; its results (dkim=none, the From addresses DMARC needs) depend on nothing else.
        this.bodyIgnored = true;
        if (!this.input.destroyed) this.input.end(chunk.subarray(0, unsignedHeaderBytes));
        return;
      }
    }
    if (this.input.destroyed || this.input.write(chunk)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.input.off('drain', done);
        this.input.off('close', done);
        resolve();
      };
      this.input.on('drain', done);
      this.input.on('close', done);
    });
  }

  /** The message has ended: the results, the header field and what to do. */
  async finish(): Promise<MailAuthResult> {
    if (!this.input.destroyed && !this.input.writableEnded) this.input.end();
    const [spfOutcome, dkimOutcome] = await Promise.allSettled([this.spfResult, this.dkimResult]);
    const spfResult = spfOutcome.status === 'fulfilled' ? spfOutcome.value : undefined;
    const dkimResult = dkimOutcome.status === 'fulfilled' ? dkimOutcome.value : undefined;
    const spfInfo = spfResult?.info ?? 'spf=temperror';
    const spfWord = spfResult?.status.result ?? 'temperror';
    // A signature with a body length limit (l=) that stops short of the body passes mailauth's check, but whatever
    // follows the signed length is anyone's (a stranger appends text or a MIME part to a genuine message): it is
    // shown as dkim=policy and never counts for DMARC.
    const unsignedTail = (r: { status: { underSized?: number } }) => (r.status.underSized ?? 0) > 0;
    const dkimInfos = dkimResult
      ? dkimResult.results
          .filter((r) => r.info)
          .map((r) =>
            r.status.result === 'pass' && unsignedTail(r)
              ? r.info.replace(
                  /^dkim=pass(?:\s*\([^)]*\))?/,
                  // Not the number of bytes: mailauth stops counting within the chunk that crosses l=.
                  'dkim=policy (body length limit l= leaves the end of the body unsigned)',
                )
              : r.info,
          )
      : ['dkim=temperror (verification failed)'];
    const dkimPassed = (dkimResult?.results ?? [])
      .filter((r) => r.status.result === 'pass' && !unsignedTail(r))
      .map((r) => ({ id: r.id, domain: r.signingDomain, aligned: r.status.aligned, underSized: r.status.underSized }));
    const spfDomains = spfResult?.status.result === 'pass' && spfResult.domain ? [spfResult.domain] : [];

    // mailauth's headerFrom skips the members of a group (`From: Bank: ceo@bank.example;`, RFC 6854), which a mail
    // client still shows as the sender: its DMARC would never be asked. The From addresses read here count as well.
    const fromAddresses = [
      ...(dkimResult?.headerFrom ?? []),
      ...(this.fromAddresses ?? fromFieldAddresses(this.header)),
    ];
    const fromDomains = [...new Set(fromAddresses.map((a) => domainOf(a)).filter(Boolean))];
    const dmarcLookup = withLookupBudget(this.settings.lookup, MAX_LOOKUPS_PER_METHOD);
    const dmarcRows: { info: string; word: string; domain: string; policy?: string; pct?: number | undefined }[] = [];
    let failure: string | undefined;
    if (!dkimResult) {
      failure = `DKIM verifier failed: ${(dkimOutcome as PromiseRejectedResult).reason}`;
    } else if (fromDomains.length === 0) {
      dmarcRows.push({ info: 'dmarc=permerror (no From address)', word: 'permerror', domain: '' });
    } else if (fromDomains.length > MAX_FROM_DOMAINS) {
      dmarcRows.push({ info: 'dmarc=permerror (too many From domains)', word: 'permerror', domain: '' });
    } else {
      // Several From domains: each is judged, the strictest outcome wins (one cannot hide behind another).
      for (const domain of fromDomains) {
        try {
          const result = await dmarc({
            headerFrom: `postmaster@${domain}`,
            spfDomains,
            dkimDomains: dkimPassed,
            resolver: dmarcLookup,
          });
          // mailauth answers `false` only for a From it cannot use; ours always has one address.
          if (!result) throw new Error(`no DMARC result for ${domain}`);
          dmarcRows.push({
            info: result.info ?? `dmarc=${result.status.result}`,
            word: result.status.result,
            domain,
            policy: result.policy,
            pct: result.pct,
          });
        } catch (err) {
          failure = `DMARC check failed: ${(err as Error).message}`;
          break;
        }
      }
    }

    const rejected = dmarcRows.find(
      (r) => r.word === 'fail' && r.policy === 'reject' && (r.pct === undefined || r.pct >= 100),
    );
    const undecided = dmarcRows.find((r) => r.word === 'temperror');
    let decision: MailAuthResult['decision'] = 'accept';
    let reason: string | undefined;
    if (failure) {
      decision = 'MAIL_AUTH_FAILED';
      reason = failure;
    } else if (fromDomains.length > MAX_FROM_DOMAINS) {
      decision = 'DMARC_REJECT';
      reason = `${fromDomains.length} From domains (at most ${MAX_FROM_DOMAINS})`;
    } else if (rejected && this.settings.dmarcReject) {
      decision = 'DMARC_REJECT';
      reason = `dmarc=fail for ${rejected.domain} (p=reject)`;
    } else if (undecided && this.settings.dnsFailure === 'defer') {
      decision = 'DMARC_TEMPERROR';
      reason = `dmarc=temperror for ${undecided.domain}`;
    }

    const rows = [
      spfInfo,
      ...(dkimInfos.length > 0 ? dkimInfos.slice(0, MAX_RESULTS_SHOWN) : ['dkim=none']),
      ...dmarcRows.map((r) => r.info),
    ];
    return {
      spf: spfWord,
      dkim: dkimResult ? dkimResult.results.map((r) => r.status.result) : ['temperror'],
      dmarc: dmarcRows.map((r) => r.word),
      decision,
      ...(reason ? { reason } : {}),
      field: authenticationResultsField(this.settings.hostname, rows),
    };
  }

  /** False once a header block without a DKIM signature has ended: the verifier is not given the body. */
  get readsBody(): boolean {
    return !this.bodyIgnored;
  }

  /** The upload failed: ends the verifier so nothing waits for the rest of the message. */
  abort(): void {
    this.input.destroy();
  }

  /**
   * Follows the header block; where it ends in this chunk, checks its DKIM signatures (checkDkimWork). Returns how
   * many bytes of this chunk belong to the header block (with its blank line) when that block has no DKIM signature;
   * undefined otherwise.
   */
  private watchHeaderBlock(chunk: Uint8Array): number | undefined {
    const chunkStart = this.header.length;
    const searchFrom = Math.max(0, chunkStart - 2);
    // Only the header's bytes become text: the first chunk is often most of a message (64 KiB of a large one), and a
    // string of it (and the regular expressions' copy) were a third of what ingest allocated (issue 12).
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.header += bytes.toString('latin1', 0, blankLineEnd(this.header, bytes) ?? bytes.length);
    const blankLine = /\n\r?\n/g;
    blankLine.lastIndex = searchFrom;
    const atStart = /^\r?\n/.exec(this.header);
    const found = atStart ? undefined : blankLine.exec(this.header);
    const end = atStart ? 0 : found?.index;
    if (end !== undefined) {
      this.inHeader = false;
      const block = this.header.slice(0, end);
      checkDkimWork(block);
      this.fromAddresses = fromFieldAddresses(block);
      const blockEnd = atStart ? atStart[0].length : end + (found?.[0].length ?? 0);
      this.header = '';
      // Any spelling of the field name in any line of the block (a substring, not a parse): whatever mailauth could
      // read as a signature keeps the whole message going to it.
      return /dkim-signature/i.test(block) ? undefined : blockEnd - chunkStart;
    }
    // The DKIM verifier holds the header block in memory: bounded here, not only by SMGW_MAX_MESSAGE_BYTES.
    if (this.header.length > MAX_HEADER_BYTES) {
      throw new MailAuthRefusal('HEADER_TOO_LARGE', `header block longer than ${MAX_HEADER_BYTES} bytes`);
    }
    return undefined;
  }
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Where in `bytes` the header block's blank line ends (one past its LF), the header so far being `before`: the first
 * LF that ends an empty line (`\n\n`, `\n\r\n`, or the message's first line `\n`, `\r\n`); undefined when none
 * does. The same line watchHeaderBlock's expressions find, looked for in the bytes so they need not become text.
 */
export function blankLineEnd(before: string, bytes: Uint8Array): number | undefined {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Before the chunk: the header's last characters (NaN before its start, which is neither CR nor LF).
  const byteAt = (i: number): number | undefined => (i >= 0 ? buffer[i] : before.charCodeAt(before.length + i));
  for (let i = buffer.indexOf(LF); i !== -1; i = buffer.indexOf(LF, i + 1)) {
    const position = before.length + i;
    const previous = byteAt(i - 1);
    if (position === 0 || (position === 1 && previous === CR) || previous === LF) return i + 1;
    if (previous === CR && byteAt(i - 2) === LF) return i + 1;
  }
  return undefined;
}

/** Refuses DKIM signatures that would ask the verifier for too much work (MAX_DKIM_*). */
function checkDkimWork(header: string): void {
  const signatures = header
    .replace(/\r?\n(?=[ \t])/g, '')
    .split(/\r?\n/)
    .filter((line) => /^dkim-signature[ \t]*:/i.test(line))
    .map(
      (field) =>
        new Map(
          field
            .slice(field.indexOf(':') + 1)
            .split(';')
            .map((tag) => tag.replace(/\s+/g, '').split('=') as [string, string | undefined]),
        ),
    );
  const bodyHashes = new Set(signatures.map((tags) => `${tags.get('c')}|${tags.get('a')}|${tags.get('l')}`)).size;
  const signedNames = signatures.reduce((sum, tags) => sum + (tags.get('h')?.split(':').length ?? 0), 0);
  const tooMuch =
    signatures.length > MAX_DKIM_SIGNATURES
      ? `${signatures.length} DKIM signatures (at most ${MAX_DKIM_SIGNATURES})`
      : bodyHashes > MAX_DKIM_BODY_HASHES
        ? `DKIM signatures asking for ${bodyHashes} different body hashes (at most ${MAX_DKIM_BODY_HASHES})`
        : signedNames > MAX_DKIM_SIGNED_FIELD_NAMES
          ? `DKIM signatures naming ${signedNames} signed fields (at most ${MAX_DKIM_SIGNED_FIELD_NAMES})`
          : undefined;
  if (tooMuch) throw new MailAuthRefusal('DMARC_REJECT', tooMuch);
}

/**
 * Every address of every From field of a header block (Latin-1 text), members of groups too. Fields are found as
 * mailauth finds them (the name is what stands before the first colon, trimmed, any case, folded or not), the value
 * read as UTF-8 as mailauth reads it.
 */
export function fromFieldAddresses(block: string): string[] {
  return block
    .replace(/\r?\n(?=[ \t])/g, '')
    .split(/\r?\n/)
    .filter((line) => /^[^:]+/.exec(line)?.[0].trim().toLowerCase() === 'from')
    .flatMap((line) =>
      listedAddresses(
        Buffer.from(line.slice(line.indexOf(':') + 1), 'latin1')
          .toString('utf8')
          .trim(),
      ),
    );
}

/**
 * The From domain DMARC judges: as a reader sees it, without brackets and trailing dots (as sender-policy.ts reads a
 * From domain), so `a@[bank.example]` is bank.example's, not a name no DNS answers for (temperror, accepted).
 */
function domainOf(address: string): string {
  return shownDomain(address).toLowerCase();
}

/**
 * `Authentication-Results: <hostname>;` and one result per line (RFC 8601). mailauth escapes what senders chose
 * (domains, selectors, addresses) into tokens, quoted strings and comments; anything outside printable ASCII is
 * replaced here as well, so the field can never carry a line break or 8-bit bytes.
 */
export function authenticationResultsField(hostname: string, rows: string[]): string {
  const printable = (s: string) => s.replace(/\s+/g, ' ').replace(/[^\x20-\x7e]/g, '?');
  return `Authentication-Results: ${printable(hostname)};\r\n\t${rows.map(printable).join(';\r\n\t')}\r\n`;
}

/**
 * The message passed on unchanged while `auth` reads along; after its end, the outcome decides: a refusal throws
 * MailAuthRefusal, so the blob store commits nothing. `done` gets the result either way.
 */
export async function* withMailAuthentication(
  source: AsyncIterable<Uint8Array>,
  auth: MessageAuthentication,
  done: (result: MailAuthResult) => void,
): AsyncGenerator<Uint8Array> {
  let finished = false;
  try {
    for await (const chunk of source) {
      await auth.write(chunk);
      yield chunk;
    }
    finished = true;
  } finally {
    if (!finished) auth.abort();
  }
  const result = await auth.finish();
  done(result);
  if (result.decision !== 'accept') throw new MailAuthRefusal(result.decision, result.reason ?? result.decision);
}
